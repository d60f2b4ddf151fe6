import { and, eq, isNull, type SQL } from "drizzle-orm";
import type { Database } from "../db/client";
import type { MerchantRow } from "../db/rows";
import { merchants } from "../db/schema";
import type { AppConfig } from "../env";
import { ApiError } from "../errors";
import { generateSigningSecret } from "../security/credentials";
import { openSecret, sealSecret } from "../security/vault";

/**
 * Alert notifications are signed with their own secret (contract.md: `alert_signing_secret`), never the fulfilment one:
 * a system that verifies alerts must not hold the key that says "ship the goods". It is issued when the alert URL is set
 * (shown once in the PATCH's answer), dropped when the URL is cleared, and rotated with an overlap like the fulfilment
 * secret. A merchant whose alert URL predates it has none: its notifications wait (retried on the alert schedule, then
 * given up) until the operator rotates one; they are never signed with another secret.
 */

/** Additional data binding the sealed alert secret to its merchant and purpose (merchants.ts `secretContext.alert`). */
export const alertSecretContext = (merchantId: string) => `merchant:${merchantId}:alert_signing_secret`;

/** The columns of a freshly issued alert secret, the previous one dropped: what a PATCH that sets the URL writes. */
export async function issuedAlertSecret(config: AppConfig, merchantId: string) {
  const secret = generateSigningSecret();
  const sealed = await sealSecret(config, secret, alertSecretContext(merchantId));
  return {
    secret,
    columns: {
      alertSecretCiphertext: sealed.ciphertext,
      alertSecretKeyId: sealed.keyId,
      alertSecretPreviousCiphertext: null,
      alertSecretPreviousKeyId: null,
      alertSecretPreviousValidUntil: null,
    } satisfies Partial<typeof merchants.$inferInsert>,
  };
}

/** The columns of no alert secret at all: what a PATCH that clears the alert URL writes. */
export const noAlertSecret = {
  alertSecretCiphertext: null,
  alertSecretKeyId: null,
  alertSecretPreviousCiphertext: null,
  alertSecretPreviousKeyId: null,
  alertSecretPreviousValidUntil: null,
} satisfies Partial<typeof merchants.$inferInsert>;

/** Compare-and-set on the alert secret a write replaces (none included): of two concurrent writes, one wins. */
export const alertSecretUnchanged = (row: MerchantRow): SQL =>
  row.alertSecretCiphertext === null
    ? isNull(merchants.alertSecretCiphertext)
    : eq(merchants.alertSecretCiphertext, row.alertSecretCiphertext);

/**
 * Issues a new alert signing secret (shown once); the one it replaces, if any, stays valid for `overlapHours` (both
 * `v1,` signatures meanwhile). Needs an alert URL: a secret that signs nothing is a 409. Compare-and-set on the sealed
 * secret it replaces, as the fulfilment rotation: a concurrent rotation or PATCH makes this one a 409 that changes nothing.
 */
export async function rotateAlertSigningSecret({
  db,
  config,
  merchantId,
  overlapHours,
}: {
  db: Database;
  config: AppConfig;
  merchantId: string;
  overlapHours: number;
}) {
  const row = await db.select().from(merchants).where(eq(merchants.id, merchantId)).get();
  if (!row) throw new ApiError("not_found", `merchant ${merchantId} not found`);
  if (!row.alertSettings?.url) {
    throw new ApiError(
      "conflict",
      `merchant ${merchantId} has no alert URL; set alerts.url (PATCH /admin/merchants/{id}), which issues the secret`,
    );
  }
  const { secret, columns } = await issuedAlertSecret(config, merchantId);
  const previousValidUntil = row.alertSecretCiphertext ? new Date(Date.now() + overlapHours * 3_600_000).toISOString() : null;
  const rotated = await db
    .update(merchants)
    .set({
      ...columns,
      alertSecretPreviousCiphertext: row.alertSecretCiphertext,
      alertSecretPreviousKeyId: row.alertSecretKeyId,
      alertSecretPreviousValidUntil: previousValidUntil,
      updatedAt: new Date().toISOString(),
    })
    .where(and(eq(merchants.id, merchantId), alertSecretUnchanged(row)))
    .returning({ id: merchants.id })
    .get();
  if (!rotated) {
    throw new ApiError(
      "conflict",
      `alert signing secret of merchant ${merchantId} was changed concurrently (another rotation, a PATCH or a re-seal); try again`,
    );
  }
  return { alert_signing_secret: secret, previous_valid_until: previousValidUntil };
}

/** The secrets an alert notification is signed with now: the current one, and the previous one while its overlap lasts; none when none was issued. */
export async function alertSigningSecretsOf(config: AppConfig, merchant: MerchantRow, now: number): Promise<string[]> {
  const context = alertSecretContext(merchant.id);
  if (!merchant.alertSecretCiphertext || !merchant.alertSecretKeyId) return [];
  const secrets = [await openSecret(config, { ciphertext: merchant.alertSecretCiphertext, keyId: merchant.alertSecretKeyId }, context)];
  const until = merchant.alertSecretPreviousValidUntil;
  if (merchant.alertSecretPreviousCiphertext && merchant.alertSecretPreviousKeyId && until && Date.parse(until) > now) {
    secrets.push(
      await openSecret(config, { ciphertext: merchant.alertSecretPreviousCiphertext, keyId: merchant.alertSecretPreviousKeyId }, context),
    );
  }
  return secrets;
}
