import { and, eq } from "drizzle-orm";
import type { Database } from "../db/client";
import type { MerchantRow } from "../db/rows";
import { merchants } from "../db/schema";
import type { AppConfig } from "../env";
import { ApiError } from "../errors";
import { generateSigningSecret } from "../security/credentials";
import { openSecret, sealSecret } from "../security/vault";
import { secretContext } from "./merchants";

/** How long notifications carry the previous signature too, unless the rotation says otherwise. */
export const DEFAULT_OVERLAP_HOURS = 24;

/**
 * Issues a new fulfilment signing secret (shown once). The one it replaces stays valid for `overlapHours`: notifications
 * carry both `v1,` signatures meanwhile, so the merchant can switch its verifier without rejecting a delivery.
 * Compare-and-set on the sealed secret it replaces: of two concurrent rotations one wins, the other is a 409 and changes
 * nothing (else the loser's secret, shown to its caller, would be silently overwritten, or would push the winner's out).
 */
export async function rotateSigningSecret({
  db,
  config,
  merchantId,
  overlapHours = DEFAULT_OVERLAP_HOURS,
}: {
  db: Database;
  config: AppConfig;
  merchantId: string;
  overlapHours?: number;
}) {
  const row = await db.select().from(merchants).where(eq(merchants.id, merchantId)).get();
  if (!row) throw new ApiError("not_found", `merchant ${merchantId} not found`);
  const secret = generateSigningSecret();
  const sealed = await sealSecret(config, secret, secretContext.fulfillment(merchantId));
  const previousValidUntil = new Date(Date.now() + overlapHours * 3_600_000).toISOString();
  const rotated = await db
    .update(merchants)
    .set({
      fulfillmentSecretCiphertext: sealed.ciphertext,
      fulfillmentSecretKeyId: sealed.keyId,
      fulfillmentSecretPreviousCiphertext: row.fulfillmentSecretCiphertext,
      fulfillmentSecretPreviousKeyId: row.fulfillmentSecretKeyId,
      fulfillmentSecretPreviousValidUntil: previousValidUntil,
      updatedAt: new Date().toISOString(),
    })
    .where(and(eq(merchants.id, merchantId), eq(merchants.fulfillmentSecretCiphertext, row.fulfillmentSecretCiphertext)))
    .returning({ id: merchants.id })
    .get();
  if (!rotated)
    throw new ApiError(
      "conflict",
      `signing secret of merchant ${merchantId} was changed concurrently (another rotation or a re-seal); try again`,
    );
  return { fulfillment: { signing_secret: secret, previous_valid_until: previousValidUntil } };
}

/** The secrets a notification is signed with now: the current one, and the previous one while its overlap lasts. */
export async function signingSecretsOf(config: AppConfig, merchant: MerchantRow, now: number): Promise<string[]> {
  const context = secretContext.fulfillment(merchant.id);
  const secrets = [
    await openSecret(config, { ciphertext: merchant.fulfillmentSecretCiphertext, keyId: merchant.fulfillmentSecretKeyId }, context),
  ];
  const until = merchant.fulfillmentSecretPreviousValidUntil;
  if (merchant.fulfillmentSecretPreviousCiphertext && merchant.fulfillmentSecretPreviousKeyId && until && Date.parse(until) > now) {
    secrets.push(
      await openSecret(
        config,
        { ciphertext: merchant.fulfillmentSecretPreviousCiphertext, keyId: merchant.fulfillmentSecretPreviousKeyId },
        context,
      ),
    );
  }
  return secrets;
}
