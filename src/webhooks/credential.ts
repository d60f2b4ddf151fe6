import { eq } from "drizzle-orm";
import type { Database } from "../db/client";
import { merchants } from "../db/schema";
import { constantTimeEqual, hashCredential } from "../security/credentials";

const MERCHANT_ID = /^[a-z0-9_-]{1,64}$/;

type Credential = { webhookUsername: string; webhookPasswordHash: string };

/**
 * Webhook credentials per isolate, for a minute: takes the D1 read off the ingest hot path. Misses are cached too, so a
 * known and an unknown merchant cost the same on repeated calls. The credential never changes after creation, so the
 * only staleness is a merchant created within the last minute after a delivery for its id was refused.
 */
const CACHE_TTL_MS = 60_000;
const CACHE_MAX_ENTRIES = 10_000;
const cache = new Map<string, { credential: Credential | undefined; expires: number }>();

async function webhookCredential(db: Database, merchantId: string): Promise<Credential | undefined> {
  const now = Date.now();
  const cached = cache.get(merchantId);
  if (cached && cached.expires > now) return cached.credential;
  const credential = await db
    .select({ webhookUsername: merchants.webhookUsername, webhookPasswordHash: merchants.webhookPasswordHash })
    .from(merchants)
    .where(eq(merchants.id, merchantId))
    .get();
  // Map keeps insertion order: dropping the oldest entry bounds memory without an LRU's bookkeeping.
  if (cache.size >= CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value ?? "");
  cache.set(merchantId, { credential: credential ? { ...credential } : undefined, expires: now + CACHE_TTL_MS });
  return credential;
}
// Compared against when the merchant does not exist, so both paths do the same work.
const ABSENT = { webhookUsername: "\u0000absent", webhookPasswordHash: "0".repeat(64) };

function parseBasic(authorization: string | undefined): { username: string; password: string } | null {
  if (!authorization) return null;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
  if (!match?.[1]) return null;
  let decoded: string;
  try {
    decoded = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(atob(match[1]), (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Checks a delivery's Basic credential against the merchant's webhook credential.
 * Unknown merchant, malformed header and wrong password all take the same path and time, so the answer reveals nothing.
 */
export async function isAuthenticDelivery(db: Database, merchantId: string, authorization: string | undefined): Promise<boolean> {
  const row = MERCHANT_ID.test(merchantId) ? await webhookCredential(db, merchantId) : undefined;
  const expected = row ?? ABSENT;
  const presented = parseBasic(authorization) ?? { username: "", password: "" };
  const usernameOk = constantTimeEqual(presented.username, expected.webhookUsername);
  const passwordOk = constantTimeEqual(await hashCredential(presented.password), expected.webhookPasswordHash);
  return row !== undefined && usernameOk && passwordOk;
}
