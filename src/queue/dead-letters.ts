import type { z } from "zod";
import type { Database } from "../db/client";
import { deadLetters } from "../db/schema";

/** Keeps a message that failed for good, with its last error, until an operator redrives it. Idempotent per message id. */
export async function storeDeadLetter({
  db,
  ...letter
}: {
  db: Database;
  id: string;
  queue: string;
  body: unknown;
  error: string;
  attempts: number;
  merchantId?: string | null;
}): Promise<void> {
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

/**
 * Parses a queue message with its schema; an unknown version or a corrupt body will not get better with retries, so it goes
 * straight to dead letters (acked) and the caller gets null.
 */
export async function parseOrDeadLetter<S extends z.ZodType>(
  db: Database,
  queue: string,
  message: Message<unknown>,
  schema: S,
): Promise<z.infer<S> | null> {
  const parsed = schema.safeParse(message.body);
  if (parsed.success) return parsed.data;
  await storeDeadLetter({ db, id: message.id, queue, body: message.body, error: "unrecognised message", attempts: message.attempts });
  message.ack();
  return null;
}
