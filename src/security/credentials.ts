import { bytesToBase64, bytesToBase64Url, bytesToHex, sha256Hex, utf8Bytes } from "../lib/encoding";

/** `bytes` of CSPRNG output, URL-safe base64. */
export function randomToken(bytes: number): string {
  return bytesToBase64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** Random lower-case hex of `bytes` bytes. */
export function randomHex(bytes: number): string {
  return bytesToHex(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** Hash of a high-entropy credential (API key, webhook password); such secrets need no slow KDF. */
export function hashCredential(secret: string): Promise<string> {
  return sha256Hex(secret);
}

/** Compares two strings in time independent of where they differ (and of their contents when lengths differ). */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = utf8Bytes(a);
  const right = utf8Bytes(b);
  if (left.byteLength !== right.byteLength) {
    // Still spend a comparison so a length mismatch is not faster.
    crypto.subtle.timingSafeEqual(left, left);
    return false;
  }
  return crypto.subtle.timingSafeEqual(left, right);
}

/** Compares a presented secret with a stored hash in constant time. */
export async function matchesHash(secret: string, storedHash: string): Promise<boolean> {
  return constantTimeEqual(await hashCredential(secret), storedHash);
}

const API_KEY_PREFIX = "sre_";

/** A new merchant API key: its public id (for lookup) and the full key shown once. */
export function generateApiKey(): { keyId: string; apiKey: string } {
  const keyId = randomHex(8);
  return { keyId, apiKey: `${API_KEY_PREFIX}${keyId}_${randomToken(32)}` };
}

/** The key id of a presented API key, or null when it is not of our shape. */
export function apiKeyId(apiKey: string): string | null {
  const match = /^sre_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$/.exec(apiKey);
  return match?.[1] ?? null;
}

/** A Standard Webhooks signing secret: `whsec_` + base64 of 24 random bytes. */
export function generateSigningSecret(): string {
  return `whsec_${bytesToBase64(crypto.getRandomValues(new Uint8Array(24)))}`;
}
