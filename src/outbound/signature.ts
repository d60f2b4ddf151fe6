import { base64ToBytes, bytesToBase64 } from "../lib/encoding";

/** Signs a payload per the Standard Webhooks scheme: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{payload}`. */
export async function signStandardWebhook(secret: string, messageId: string, timestampSeconds: number, payload: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", base64ToBytes(secret.replace(/^whsec_/, "")), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${messageId}.${timestampSeconds}.${payload}`));
  return `v1,${bytesToBase64(new Uint8Array(mac))}`;
}

/**
 * The three Standard Webhooks headers for one delivery attempt. With several secrets (a rotation's overlap), the
 * signature header carries one `v1,` signature per secret, space-separated, as Standard Webhooks allows.
 */
export async function standardWebhookHeaders(secrets: string | readonly string[], messageId: string, payload: string, now = Date.now()) {
  const timestamp = Math.floor(now / 1000);
  const all = typeof secrets === "string" ? [secrets] : secrets;
  const signatures = await Promise.all(all.map((secret) => signStandardWebhook(secret, messageId, timestamp, payload)));
  return {
    "webhook-id": messageId,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": signatures.join(" "),
  };
}
