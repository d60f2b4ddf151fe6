import { and, eq } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "../db/client";
import { merchants } from "../db/schema";
import { ApiError } from "../errors";
import { hashCredential, randomToken } from "../security/credentials";
import { forgetWebhookCredentials } from "./credential-directory";
import { findMerchant, webhookPath } from "./merchants";

/** Body of `POST /admin/merchants/{id}/webhook-credential`; an empty body takes the defaults. */
export const rotateWebhookCredentialSchema = z.strictObject({
  /** How long the replaced password keeps working: time to update Smart Router's dashboard without losing a delivery. */
  overlap_hours: z.int().min(0).max(168).default(24),
});

export type RotateWebhookCredentialInput = z.infer<typeof rotateWebhookCredentialSchema>;

/**
 * Issues a new webhook password, returned here and never again (stored as its hash); the one it replaces is accepted
 * until `previous_valid_until`. A rotation during an overlap ends the older password at once. The username stays.
 * Compare-and-set on the current hash: of two concurrent rotations one wins, the other is a 409 and changes nothing.
 */
export async function rotateWebhookCredential({
  db,
  shard,
  merchantId,
  input,
}: {
  db: Database;
  /** The index of the merchant's shard (`db`): only its cached credentials are dropped, so another failing shard keeps its copy. */
  shard: number;
  merchantId: string;
  input: RotateWebhookCredentialInput;
}) {
  const current = await findMerchant({ db, merchantId });
  const password = randomToken(24);
  const now = Date.now();
  const previousValidUntil = new Date(now + input.overlap_hours * 3_600_000).toISOString();
  const rotated = await db
    .update(merchants)
    .set({
      webhookPasswordHash: await hashCredential(password),
      webhookPasswordPreviousHash: current.webhookPasswordHash,
      webhookPasswordPreviousValidUntil: previousValidUntil,
      updatedAt: new Date(now).toISOString(),
    })
    .where(and(eq(merchants.id, merchantId), eq(merchants.webhookPasswordHash, current.webhookPasswordHash)))
    .returning({ id: merchants.id })
    .get();
  if (!rotated) throw new ApiError("conflict", `webhook credential of merchant ${merchantId} was rotated concurrently; try again`);
  forgetWebhookCredentials({ shard });
  return {
    webhook: { path: webhookPath(merchantId), username: current.webhookUsername, password, previous_valid_until: previousValidUntil },
  };
}
