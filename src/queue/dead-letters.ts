import type { Database } from "../db/client";
import { deadLetters } from "../db/schema";

/** Keeps a message that failed for good, with its last error, until an operator redrives it. Idempotent per message id. */
export async function storeDeadLetter(
  db: Database,
  letter: { id: string; queue: string; body: unknown; error: string; attempts: number; merchantId?: string | null },
): Promise<void> {
  const merchantId =
    letter.merchantId ??
    (typeof letter.body === "object" && letter.body !== null && "merchant_id" in letter.body && typeof letter.body.merchant_id === "string"
      ? letter.body.merchant_id
      : null);
  await db
    .insert(deadLetters)
    .values({ id: letter.id, queue: letter.queue, merchantId, body: letter.body ?? null, error: letter.error, attempts: letter.attempts })
    .onConflictDoNothing();
}
