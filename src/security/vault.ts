import type { AppConfig } from "../env";
import { base64ToBytes, bytesToBase64, sha256Hex } from "../lib/encoding";

/** A secret as stored in D1: AES-256-GCM ciphertext (IV prepended) and the id of the key that sealed it. */
export interface SealedSecret {
  ciphertext: string;
  keyId: string;
}

interface VaultKey {
  id: string;
  key: CryptoKey;
}

const keyCache = new Map<string, Promise<VaultKey>>();

function importKey(base64: string): Promise<VaultKey> {
  let cached = keyCache.get(base64);
  if (!cached) {
    cached = (async () => {
      const raw = base64ToBytes(base64);
      // The key id is a hash prefix, so rows name their key without revealing it.
      const id = (await sha256Hex(raw)).slice(0, 12);
      const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
      return { id, key };
    })();
    keyCache.set(base64, cached);
  }
  return cached;
}

/** The id of the current SECRETS_KEY, as rows sealed by it name it. */
export async function currentKeyId(config: AppConfig): Promise<string> {
  return (await importKey(config.SECRETS_KEY)).id;
}

/** Encrypts `plaintext` under the current SECRETS_KEY, bound to `context` (e.g. "merchant:acme:smart_router") so a ciphertext cannot be moved to another row. */
export async function sealSecret(config: AppConfig, plaintext: string, context: string): Promise<SealedSecret> {
  const { id, key } = await importKey(config.SECRETS_KEY);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const encrypted = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: new TextEncoder().encode(context) },
    key,
    new TextEncoder().encode(plaintext),
  );
  const sealed = new Uint8Array(iv.length + encrypted.byteLength);
  sealed.set(iv);
  sealed.set(new Uint8Array(encrypted), iv.length);
  return { ciphertext: bytesToBase64(sealed), keyId: id };
}

/** Decrypts a sealed secret with whichever configured key (current or previous) sealed it. */
export async function openSecret(config: AppConfig, sealed: SealedSecret, context: string): Promise<string> {
  const candidates = [config.SECRETS_KEY, config.SECRETS_KEY_PREVIOUS].filter((k): k is string => Boolean(k));
  for (const candidate of candidates) {
    const { id, key } = await importKey(candidate);
    if (id !== sealed.keyId) continue;
    const bytes = base64ToBytes(sealed.ciphertext);
    const plaintext = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: bytes.slice(0, 12), additionalData: new TextEncoder().encode(context) },
      key,
      bytes.slice(12),
    );
    return new TextDecoder().decode(plaintext);
  }
  throw new Error(`no configured SECRETS_KEY has id ${sealed.keyId}`);
}
