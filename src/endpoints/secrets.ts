import type { endpoints } from "../db/schema";
import type { AppConfig } from "../env";
import { generateSigningSecret } from "../security/credentials";
import { openSecret, type SealedSecret, sealSecret } from "../security/vault";

export type EndpointRow = typeof endpoints.$inferSelect;

/** What an endpoint's secret is bound to (AES-GCM additional data): a ciphertext cannot be moved to another row. */
export const endpointSecretContext = (merchantId: string, endpointId: string) => `endpoint:${merchantId}:${endpointId}:signing_secret`;

/** A new `whsec_` signing secret for an endpoint, and its sealed form for D1: the plain one is shown once. */
export async function issueEndpointSecret(
  config: AppConfig,
  merchantId: string,
  endpointId: string,
): Promise<{ secret: string; sealed: SealedSecret }> {
  const secret = generateSigningSecret();
  return { secret, sealed: await sealSecret(config, secret, endpointSecretContext(merchantId, endpointId)) };
}

/** The secrets a message is signed with now: the current one, and the one a rotation replaced while its overlap lasts. */
export async function endpointSecretsOf(config: AppConfig, row: EndpointRow, now: number): Promise<string[]> {
  const context = endpointSecretContext(row.merchantId, row.id);
  const secrets = [await openSecret(config, { ciphertext: row.secretCiphertext, keyId: row.secretKeyId }, context)];
  const until = row.previousSecretValidUntil;
  if (row.previousSecretCiphertext && row.previousSecretKeyId && until && Date.parse(until) > now) {
    secrets.push(await openSecret(config, { ciphertext: row.previousSecretCiphertext, keyId: row.previousSecretKeyId }, context));
  }
  return secrets;
}
