import { base64ToBytes, bytesToBase64 } from "../security/encoding";

/** Signs a payload per the Standard Webhooks scheme: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{payload}`. */
export async function signStandardWebhook(secret: string, messageId: string, timestampSeconds: number, payload: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", base64ToBytes(secret.replace(/^whsec_/, "")), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${messageId}.${timestampSeconds}.${payload}`));
  return `v1,${bytesToBase64(new Uint8Array(mac))}`;
}

/** The three Standard Webhooks headers for one delivery attempt. */
export async function standardWebhookHeaders(secret: string, messageId: string, payload: string, now = Date.now()) {
  const timestamp = Math.floor(now / 1000);
  return {
    "webhook-id": messageId,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await signStandardWebhook(secret, messageId, timestamp, payload),
  };
}
