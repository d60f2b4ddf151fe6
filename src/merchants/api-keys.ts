import { and, asc, eq, sql } from "drizzle-orm";
import { inList, insertJsonRows } from "../db/bulk";
import type { Database } from "../db/client";
import { servedHere } from "../db/fence";
import { apiKeyDirectory, apiKeys, merchants } from "../db/schema";
import { ApiError } from "../errors";
import { apiKeyId, generateApiKey, hashCredential, matchesHash } from "../security/credentials";
import type { MerchantScope } from "../transactions/queries";

/** The merchant an API key belongs to, as the status API scopes its reads, and the key's id. */
export interface ApiKeyHolder extends MerchantScope {
  apiKeyId: string;
}

// Compared against when the key id is unknown (or the key malformed), so every rejection costs one hash and one comparison.
const ABSENT_KEY_HASH = "0".repeat(64);

/**
 * Authenticates a presented API key with one read of `api_key_directory` on DB (`directory`) by its id part, then one
 * read of the key on the merchant's shard: two reads for a listed key, one for any other, never a query per shard, so
 * a failing shard fails only its own merchants' keys. Compares the SHA-256 of the whole key in constant time, refuses
 * revoked keys. Unknown, revoked and malformed keys all answer null. (A listed key id costs one read more than an
 * unlisted one: the id is a random 64-bit label, and knowing one exists tells nothing of the key's secret part.)
 */
export async function authenticateApiKey({
  directory,
  shards,
  presented,
}: {
  directory: Database;
  shards: readonly Database[];
  presented: string;
}): Promise<{ holder: ApiKeyHolder; shard: number } | null> {
  const keyId = apiKeyId(presented);
  const listed = keyId
    ? await directory
        .select({ merchantId: apiKeyDirectory.merchantId, shard: apiKeyDirectory.shard })
        .from(apiKeyDirectory)
        .where(eq(apiKeyDirectory.keyId, keyId))
        .get()
    : undefined;
  const row = keyId && listed ? await keyOnShard(shards, listed, keyId) : undefined;
  const matches = await matchesHash(presented, row?.keyHash ?? ABSENT_KEY_HASH);
  if (!row || !listed || !keyId || !matches || row.revokedAt !== null) return null;
  return { holder: { id: row.merchantId, apiKeyId: keyId, fulfillmentConfigured: row.fulfillmentUrl !== null }, shard: listed.shard };
}

/** The key's row on the shard the directory names (a directory row whose key was never written finds nothing). */
function keyOnShard(shards: readonly Database[], listed: { merchantId: string; shard: number }, keyId: string) {
  const db = shards[listed.shard];
  if (!db) throw new Error(`api key directory names shard ${listed.shard}, but only ${shards.length} D1 shards are bound`);
  return db
    .select({
      merchantId: apiKeys.merchantId,
      keyHash: apiKeys.keyHash,
      revokedAt: apiKeys.revokedAt,
      fulfillmentUrl: merchants.fulfillmentUrl,
    })
    .from(apiKeys)
    .innerJoin(merchants, eq(merchants.id, apiKeys.merchantId))
    .where(and(eq(apiKeys.id, keyId), eq(apiKeys.merchantId, listed.merchantId)))
    .get();
}

/** Where a merchant's key goes: its shard (`db`, index `shard`) and the key directory on DB (`directory`). */
export interface KeyHolder {
  db: Database;
  directory: Database;
  merchantId: string;
  shard: number;
}

/**
 * A new API key of a merchant on shard `shard` (`db`): `listing`, its row in the directory on DB, to write before (or
 * with) `insert`, its row on the shard, so that no stored key is ever missing from the directory.
 */
export async function newApiKey({ db, directory, merchantId, shard }: KeyHolder) {
  const { keyId, apiKey } = generateApiKey();
  return {
    keyId,
    apiKey,
    listing: directory.insert(apiKeyDirectory).values({ keyId, merchantId, shard }),
    insert: db.insert(apiKeys).values({ id: keyId, merchantId, keyHash: await hashCredential(apiKey), listedInDirectory: true }),
  };
}

/** Keys entered in the directory per run and shard by the backfill: one statement each way, a few ms of D1. */
const BACKFILL_KEYS_PER_RUN = 500;

/**
 * The cron's backfill of `api_key_directory` for shard `shard` (`db`): enters up to BACKFILL_KEYS_PER_RUN keys not listed
 * yet, then marks them listed on the shard. Keys issued before the upgrade to the directory (issue 20) on a shard other
 * than DB (the migration lists DB's own) authenticate only once a run has listed them, so deploy, then let one cron run
 * pass. Idempotent: a run that stops between the two writes lists the same keys again, which changes nothing.
 */
export async function listApiKeysInDirectory({ db, directory, shard }: { db: Database; directory: Database; shard: number }) {
  const unlisted = await db
    .select({ id: apiKeys.id, merchantId: apiKeys.merchantId })
    .from(apiKeys)
    // A literal, not a bound 0, so that SQLite uses the partial index `api_keys_unlisted`; a merchant not served here
    // (db/fence.ts: a move's copy) would be listed under this shard: its source lists it.
    .where(and(sql`${apiKeys.listedInDirectory} = 0`, servedHere(apiKeys.merchantId)))
    .orderBy(asc(apiKeys.id))
    .limit(BACKFILL_KEYS_PER_RUN);
  if (unlisted.length === 0) return 0;
  const rows = unlisted.map((key) => ({ key_id: key.id, merchant_id: key.merchantId, shard }));
  for (const statement of insertJsonRows(apiKeyDirectory, rows, sql`ON CONFLICT DO NOTHING`)) await directory.run(statement);
  await db
    .update(apiKeys)
    .set({ listedInDirectory: true })
    .where(
      inList(
        apiKeys.id,
        unlisted.map((key) => key.id),
      ),
    );
  return unlisted.length;
}

/** The key the admin token is counted under when it acts as a merchant (the status API limits per key). */
export const ADMIN_ACTOR_KEY = "admin";

/** The merchant the admin token acts as (`X-Merchant-Id` on the status API); an unknown merchant is a 404. */
export async function merchantForAdmin({ db, merchantId }: { db: Database; merchantId: string }): Promise<ApiKeyHolder> {
  const row = await db
    .select({ id: merchants.id, fulfillmentUrl: merchants.fulfillmentUrl })
    .from(merchants)
    .where(eq(merchants.id, merchantId))
    .get();
  if (!row) throw new ApiError("not_found", `merchant ${merchantId} not found`);
  return { id: row.id, apiKeyId: ADMIN_ACTOR_KEY, fulfillmentConfigured: row.fulfillmentUrl !== null };
}
