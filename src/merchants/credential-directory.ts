import type { Database } from "../db/client";
import { safeErrorMessage } from "../db/errors";
import { merchants } from "../db/schema";
import { ApiError } from "../errors";
import { base64ToBytes, decodeUtf8Strict } from "../lib/encoding";
import { log } from "../lib/log";
import type { RateLimitSettings } from "../rate-limiter/limiter";
import { constantTimeEqual, hashCredential } from "../security/credentials";

/** One merchant's webhook credential as the edge checks it. */
interface WebhookCredential {
  username: string;
  passwordHash: string;
  /** The password a rotation replaced, accepted until `previousValidUntil` (epoch ms). */
  previousHash: string | null;
  previousValidUntil: number;
  /** The merchant's edge limits come from its project and `rate_limits`, held here so that limiting reads no D1 either. */
  projectId: string;
  rateLimits: RateLimitSettings | null;
}

/** One shard's merchants' credentials, as last read from it. */
interface ShardCopy {
  credentials: Map<string, WebhookCredential>;
  /** When this copy was read from D1: its staleness (MAX_STALE_MS) counts from here. */
  loadedAt: number;
  /** When it is read again: REFRESH_MS after a load, RETRY_AFTER_FAILURE_MS after a failed reload. */
  reloadAt: number;
}

/**
 * Every merchant's webhook credential, held per isolate and loaded shard by shard (one query per shard), so that checking
 * a delivery never reads D1 for its merchant: a known id, an unknown id and a first-seen id are all one in-memory lookup
 * per shard, and the answer's timing cannot tell whether a merchant exists. A merchant registered, or a credential
 * rotated, in another isolate is seen here within REFRESH_MS; in this isolate at once (`forgetWebhookCredentials`).
 * About 200 bytes per merchant: 10,000 merchants hold 2 MB.
 */
const REFRESH_MS = 60_000;
/** After a failed reload the shard's last copy keeps serving (ingest does not need D1), and the load is tried again this soon. */
const RETRY_AFTER_FAILURE_MS = 5_000;
/**
 * How long a shard's last good copy serves while its reloads fail: up to 15 minutes after it was read. Safe because
 * that is the longest a credential changed meanwhile (rotated, or a limit changed) is honoured here as it was, against
 * 1 minute when the shard answers; a delivery so accepted is only enqueued, and the consumer verifies every event with
 * Smart Router before anything is written. Past it the shard's merchants get 503 (Smart Router retries for 3 days).
 */
const MAX_STALE_MS = 15 * 60_000;
/** The Retry-After of a delivery whose credential cannot be checked now. */
const UNAVAILABLE_RETRY_AFTER_SECONDS = "30";

const copies = new Map<number, ShardCopy>();
const loading = new Map<number, Promise<ShardCopy | undefined>>();
/** A shard with no usable copy whose load failed is not asked again before this time (one query per 5 s, not per delivery). */
const failedUntil = new Map<number, number>();
/** Bumped by `forgetWebhookCredentials`, so a load that began before a change is not installed after it. */
const generations = new Map<number, number>();

async function loadShard(db: Database, now: number): Promise<ShardCopy> {
  const rows = await db
    .select({
      id: merchants.id,
      username: merchants.webhookUsername,
      passwordHash: merchants.webhookPasswordHash,
      previousHash: merchants.webhookPasswordPreviousHash,
      previousValidUntil: merchants.webhookPasswordPreviousValidUntil,
      rateLimits: merchants.rateLimits,
      projectId: merchants.smartRouterProjectId,
    })
    .from(merchants);
  const credentials = new Map<string, WebhookCredential>();
  for (const { id, previousValidUntil, ...credential } of rows) {
    credentials.set(id, { ...credential, previousValidUntil: previousValidUntil ? Date.parse(previousValidUntil) : 0 });
  }
  return { credentials, loadedAt: now, reloadAt: now + REFRESH_MS };
}

/** After a failed load: the shard's last copy while it is younger than MAX_STALE_MS, else none (its merchants get 503). */
function afterFailedLoad(index: number, now: number, error: unknown): ShardCopy | undefined {
  const last = copies.get(index);
  const usable = last !== undefined && now - last.loadedAt < MAX_STALE_MS ? last : undefined;
  log("warn", "webhook.credentials_reload_failed", {
    shard: index,
    error: safeErrorMessage(error),
    serving_copy_from: usable ? new Date(usable.loadedAt).toISOString() : null,
  });
  if (!usable) {
    copies.delete(index);
    failedUntil.set(index, now + RETRY_AFTER_FAILURE_MS);
    return undefined;
  }
  const kept = { ...usable, reloadAt: Math.min(now + RETRY_AFTER_FAILURE_MS, usable.loadedAt + MAX_STALE_MS) };
  copies.set(index, kept);
  return kept;
}

/** Shard `index`'s copy, reloaded when due; concurrent requests share one load; undefined while it has none to serve. */
function currentCopy(index: number, db: Database, now: number): Promise<ShardCopy | undefined> {
  const copy = copies.get(index);
  if (copy && now < copy.reloadAt) return Promise.resolve(copy);
  if (!copy && now < (failedUntil.get(index) ?? 0)) return Promise.resolve(undefined);
  const pending = loading.get(index);
  if (pending) return pending;
  const started = generations.get(index) ?? 0;
  const load = loadShard(db, now)
    .then((loaded) => {
      if (started === (generations.get(index) ?? 0)) copies.set(index, loaded);
      return loaded;
    })
    .catch((error: unknown) => afterFailedLoad(index, now, error))
    .finally(() => {
      if (loading.get(index) === load) loading.delete(index);
    });
  loading.set(index, load);
  return load;
}

/**
 * Makes the next check in this isolate reload the credentials of shard `shard` (every shard without one): called after
 * a registration, a rotation or a limit change here.
 */
export function forgetWebhookCredentials({ shard }: { shard?: number } = {}): void {
  const indexes = shard === undefined ? [...new Set([...copies.keys(), ...loading.keys(), ...failedUntil.keys()])] : [shard];
  for (const index of indexes) {
    generations.set(index, (generations.get(index) ?? 0) + 1);
    copies.delete(index);
    loading.delete(index);
    failedUntil.delete(index);
  }
}

// Compared against when the merchant does not exist or has no previous password, so every path does the same work.
const ABSENT = { username: "\u0000absent", passwordHash: "0".repeat(64) };

function parseBasic(authorization: string | undefined): { username: string; password: string } | null {
  if (!authorization) return null;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
  if (!match?.[1]) return null;
  let decoded: string;
  try {
    decoded = decodeUtf8Strict(base64ToBytes(match[1]));
  } catch {
    return null;
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The merchant an authentic delivery came for, its project and its rate limits (null: the defaults). */
export interface DeliverySender {
  merchantId: string;
  /** The index of the shard whose copy holds the merchant (src/db/shards.ts). */
  shard: number;
  projectId: string;
  rateLimits: RateLimitSettings | null;
}

/**
 * Checks a delivery's Basic credential against the merchant's current webhook password, or the previous one during its
 * overlap; null when it does not match, a 503 ApiError when it does not while some shard has no copy to check against.
 * Unknown merchant, malformed header and wrong password all do one lookup in memory per shard, one hash and three
 * comparisons, so the answer reveals nothing.
 */
export async function authenticateDelivery({
  shards,
  merchantId,
  authorization,
}: {
  shards: readonly Database[];
  merchantId: string;
  authorization: string | undefined;
}): Promise<DeliverySender | null> {
  const now = Date.now();
  const available = await Promise.all(shards.map((db, index) => currentCopy(index, db, now)));
  // One lookup in every shard's copy, whichever holds the merchant.
  const shard = available.findIndex((copy) => copy?.credentials.has(merchantId));
  const found = available[shard]?.credentials.get(merchantId);
  const expected = found ?? { ...ABSENT, previousHash: null, previousValidUntil: 0 };
  const presented = parseBasic(authorization) ?? { username: "", password: "" };
  const presentedHash = await hashCredential(presented.password);
  const usernameOk = constantTimeEqual(presented.username, expected.username);
  const currentOk = constantTimeEqual(presentedHash, expected.passwordHash);
  const previousOk = constantTimeEqual(presentedHash, expected.previousHash ?? ABSENT.passwordHash) && now < expected.previousValidUntil;
  if (found !== undefined && usernameOk && (currentOk || previousOk)) {
    return { merchantId, shard, projectId: found.projectId, rateLimits: found.rateLimits };
  }
  // A shard without a copy may hold this merchant: whatever did not match (an unknown id as a wrong password, so the
  // answer tells nothing of who exists) is a 503 Smart Router retries, never a 401 it would give up on.
  if (available.includes(undefined)) {
    throw new ApiError("service_unavailable", "webhook credentials cannot be checked now; retry later", {
      "Retry-After": UNAVAILABLE_RETRY_AFTER_SECONDS,
    });
  }
  return null;
}
