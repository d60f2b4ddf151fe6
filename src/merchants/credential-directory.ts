import type { Database } from "../db/client";
import { merchants } from "../db/schema";
import { base64ToBytes, decodeUtf8Strict } from "../lib/encoding";
import { log } from "../lib/log";
import { constantTimeEqual, hashCredential } from "../security/credentials";

/** One merchant's webhook credential as the edge checks it. */
interface WebhookCredential {
  username: string;
  passwordHash: string;
  /** The password a rotation replaced, accepted until `previousValidUntil` (epoch ms). */
  previousHash: string | null;
  previousValidUntil: number;
  /** The merchant's edge limit (`rate_limits.webhooks_rpm`), held here so that limiting reads no D1 either. */
  deliveriesPerMinute: number | undefined;
}

interface Directory {
  credentials: Map<string, WebhookCredential>;
  loadedAt: number;
}

/**
 * Every merchant's webhook credential, held per isolate and loaded as one unit (one query per shard), so that checking a delivery
 * never reads D1 for its merchant: a known id, an unknown id and a first-seen id are all one in-memory lookup, and the
 * answer's timing cannot tell whether a merchant exists. A merchant registered, or a credential rotated, in another
 * isolate is seen here within REFRESH_MS; in this isolate at once (`forgetWebhookCredentials`). About 200 bytes per
 * merchant: 10,000 merchants hold 2 MB.
 */
const REFRESH_MS = 60_000;
/** After a failed load the last directory keeps serving (ingest does not need D1), and the load is tried again this soon. */
const RETRY_AFTER_FAILURE_MS = 5_000;

let directory: Directory | undefined;
let loading: Promise<Directory> | undefined;
/** Bumped by `forgetWebhookCredentials`, so a load that began before a change is not installed after it. */
let generation = 0;

async function loadDirectory(shards: readonly Database[], now: number): Promise<Directory> {
  const perShard = await Promise.all(
    shards.map((db) =>
      db
        .select({
          id: merchants.id,
          username: merchants.webhookUsername,
          passwordHash: merchants.webhookPasswordHash,
          previousHash: merchants.webhookPasswordPreviousHash,
          previousValidUntil: merchants.webhookPasswordPreviousValidUntil,
          rateLimits: merchants.rateLimits,
        })
        .from(merchants),
    ),
  );
  const rows = perShard.flat();
  const credentials = new Map<string, WebhookCredential>();
  for (const { id, previousValidUntil, rateLimits, ...credential } of rows) {
    credentials.set(id, {
      ...credential,
      previousValidUntil: previousValidUntil ? Date.parse(previousValidUntil) : 0,
      deliveriesPerMinute: rateLimits?.webhooks_rpm,
    });
  }
  return { credentials, loadedAt: now };
}

/** The directory, reloaded when older than REFRESH_MS; concurrent requests share one load. */
function currentDirectory(shards: readonly Database[], now: number): Promise<Directory> {
  if (directory && now - directory.loadedAt < REFRESH_MS) return Promise.resolve(directory);
  if (loading) return loading;
  const started = generation;
  const load = loadDirectory(shards, now)
    .then((loaded) => {
      if (started === generation) directory = loaded;
      return loaded;
    })
    .catch((error: unknown) => {
      if (!directory) throw error;
      log("warn", "webhook.credentials_reload_failed", { error: error instanceof Error ? error.message : String(error) });
      directory = { ...directory, loadedAt: now - REFRESH_MS + RETRY_AFTER_FAILURE_MS };
      return directory;
    })
    .finally(() => {
      if (loading === load) loading = undefined;
    });
  loading = load;
  return load;
}

/** Makes the next check in this isolate reload every credential: called after a registration or a rotation here. */
export function forgetWebhookCredentials(): void {
  generation += 1;
  directory = undefined;
  loading = undefined;
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

/** The merchant an authentic delivery came for, and its edge limit (undefined: the default). */
export interface DeliverySender {
  merchantId: string;
  deliveriesPerMinute: number | undefined;
}

/**
 * Checks a delivery's Basic credential against the merchant's current webhook password, or the previous one during its
 * overlap; null when it does not match. Unknown merchant, malformed header and wrong password all do one lookup in
 * memory, one hash and three comparisons, so the answer reveals nothing.
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
  const found = (await currentDirectory(shards, now)).credentials.get(merchantId);
  const expected = found ?? { ...ABSENT, previousHash: null, previousValidUntil: 0 };
  const presented = parseBasic(authorization) ?? { username: "", password: "" };
  const presentedHash = await hashCredential(presented.password);
  const usernameOk = constantTimeEqual(presented.username, expected.username);
  const currentOk = constantTimeEqual(presentedHash, expected.passwordHash);
  const previousOk = constantTimeEqual(presentedHash, expected.previousHash ?? ABSENT.passwordHash) && now < expected.previousValidUntil;
  return found !== undefined && usernameOk && (currentOk || previousOk)
    ? { merchantId, deliveriesPerMinute: found.deliveriesPerMinute }
    : null;
}
