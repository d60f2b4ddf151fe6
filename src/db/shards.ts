import { count, eq, sql } from "drizzle-orm";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { type Database, openDatabase } from "./client";
import { safeErrorMessage } from "./errors";
import { merchantShards } from "./schema";

/**
 * Merchants spread over D1 databases (issue 14): `DB` is shard 0, then `DB_SHARD_1`, `DB_SHARD_2`, … in wrangler.toml.
 * Every shard carries the whole schema; a merchant's row and all its data live on its shard. `DB` also holds what is
 * global: the directory below (merchant → shard, and the Smart Router project each merchant claimed) and the admin audit.
 */
export interface Shard {
  index: number;
  db: Database;
}

const isD1 = (value: unknown): value is D1Database => typeof value === "object" && value !== null && "prepare" in value && "batch" in value;

const found = new WeakMap<object, Shard[]>();

/** Every merchant database bound to this worker, in order: DB, DB_SHARD_1, … (numbered without gaps). */
export function shardsOf(env: AppEnv): Shard[] {
  const cached = found.get(env);
  if (cached) return cached;
  const shards: Shard[] = [{ index: 0, db: openDatabase(env.DB) }];
  // Ends at the first index with no binding.
  for (let index = 1; ; index += 1) {
    const binding: unknown = Reflect.get(env, `DB_SHARD_${index}`);
    if (!isD1(binding)) break;
    shards.push({ index, db: openDatabase(binding) });
  }
  found.set(env, shards);
  return shards;
}

/** The database of every shard, in order. */
export const shardDatabases = (env: AppEnv): Database[] => shardsOf(env).map((shard) => shard.db);

/** The database of the directory and of what is global (shard 0). */
export const directoryDatabase = (env: AppEnv): Database => openDatabase(env.DB);

// A merchant never moves, so an entry learnt once stays true for the isolate's life; ids not found are not kept (a
// merchant registered in another isolate is found on its first lookup here). About 60 bytes a merchant.
const shardOfMerchant = new Map<string, number>();

/** The shard index of a merchant, from memory after its first lookup; undefined for an unknown merchant. */
export async function shardIndexOf(env: AppEnv, merchantId: string): Promise<number | undefined> {
  const known = shardOfMerchant.get(merchantId);
  if (known !== undefined) return known;
  const row = await directoryDatabase(env)
    .select({ shard: merchantShards.shard })
    .from(merchantShards)
    .where(eq(merchantShards.merchantId, merchantId))
    .get();
  if (row) shardOfMerchant.set(merchantId, row.shard);
  return row?.shard;
}

/** The shard at `index`; a directory naming a shard this worker has no binding for is a configuration error. */
export function shardAt(env: AppEnv, index: number): Shard {
  const shard = shardsOf(env)[index];
  if (!shard) throw new Error(`merchant directory names shard ${index}, but only ${shardsOf(env).length} D1 shards are bound`);
  return shard;
}

/**
 * The shard holding a merchant. An unknown merchant gets shard 0, where it is not found either: the caller's own
 * "not found" path (a 404, a dead letter) answers for it.
 */
export async function shardFor(env: AppEnv, merchantId: string): Promise<Shard> {
  return shardAt(env, (await shardIndexOf(env, merchantId)) ?? 0);
}

/** The database holding a merchant (see `shardFor`). */
export async function databaseFor(env: AppEnv, merchantId: string): Promise<Database> {
  return (await shardFor(env, merchantId)).db;
}

/** How one shard answered a probe: `reason` is D1's own message (a table, a code), never a bound value or a secret. */
export interface ShardHealth {
  shard: number;
  binding: string;
  ok: boolean;
  reason?: string;
}

/** The binding name of a shard index, as wrangler.toml declares it. */
export const bindingOf = (index: number): string => (index === 0 ? "DB" : `DB_SHARD_${index}`);

/**
 * Probes every shard side by side with a read of a real table (`merchants`, which every query of a merchant joins), so a
 * shard that is unreachable or unmigrated counts as failing where `SELECT 1` would still answer.
 */
export function probeShards(env: AppEnv): Promise<ShardHealth[]> {
  return Promise.all(
    shardsOf(env).map(async ({ index, db }) => {
      try {
        await db.get(sql`SELECT 1 FROM merchants LIMIT 1`);
        return { shard: index, binding: bindingOf(index), ok: true };
      } catch (error) {
        return { shard: index, binding: bindingOf(index), ok: false, reason: safeErrorMessage(error) };
      }
    }),
  );
}

/**
 * The shard a new merchant goes to: among the shards that answer a probe, the one holding the fewest merchants (the
 * lowest index on a tie). None answering is a 503 before anything is claimed.
 */
export async function leastFullShard(env: AppEnv): Promise<Shard> {
  const [counted, health] = await Promise.all([
    directoryDatabase(env).select({ shard: merchantShards.shard, merchants: count() }).from(merchantShards).groupBy(merchantShards.shard),
    probeShards(env),
  ]);
  const load = new Map(counted.map((row) => [row.shard, row.merchants]));
  const fill = (shard: Shard) => load.get(shard.index) ?? 0;
  const healthy = new Set(health.filter((probe) => probe.ok).map((probe) => probe.shard));
  const candidates = shardsOf(env).filter((shard) => healthy.has(shard.index));
  const [first, ...rest] = candidates;
  if (!first) throw new ApiError("service_unavailable", "no database can take a new merchant now; retry later", { "Retry-After": "30" });
  return rest.reduce((least, shard) => (fill(shard) < fill(least) ? shard : least), first);
}

/** Records where a merchant lives once its registration committed there (this isolate knows at once). */
export function rememberShard(merchantId: string, shard: number): void {
  shardOfMerchant.set(merchantId, shard);
}

/**
 * Splits messages by their shard: `keyOf` names a message's merchant (its shard from the directory) or a shard index;
 * null sends it to shard 0, whose consumer dead-letters what it cannot read.
 */
export async function groupByShard<T>(
  env: AppEnv,
  items: readonly T[],
  keyOf: (item: T) => { merchantId: string } | { shard: number } | null,
): Promise<Map<Shard, T[]>> {
  const keys = items.map(keyOf);
  // Each merchant's shard is looked up once, all side by side (from memory once this isolate has seen the merchant).
  const merchantIds = [...new Set(keys.flatMap((key) => (key !== null && "merchantId" in key ? [key.merchantId] : [])))];
  const shardOfId = new Map(await Promise.all(merchantIds.map(async (id) => [id, await shardFor(env, id)] as const)));
  const groups = new Map<Shard, T[]>();
  items.forEach((item, i) => {
    const key = keys[i] ?? null;
    const shard =
      key === null ? shardAt(env, 0) : "shard" in key ? shardAt(env, key.shard) : (shardOfId.get(key.merchantId) ?? shardAt(env, 0));
    const group = groups.get(shard);
    if (group) group.push(item);
    else groups.set(shard, [item]);
  });
  return groups;
}

/**
 * The rows `read` finds on each of `dbs` (every shard, or one merchant's), merged in `order`. `read` takes one keyset page
 * (limit + 1 rows after the cursor) per database: the first limit + 1 rows of them all are among those, so the merge
 * holds the whole list's page.
 */
export async function mergedRows<Row>(
  dbs: readonly Database[],
  read: (db: Database) => Promise<Row[]>,
  order: (a: Row, b: Row) => number,
): Promise<Row[]> {
  const perShard = await Promise.all(dbs.map(read));
  return perShard.flat().sort(order);
}

/** Descending order of (time, id) pairs, the order of the admin's newest-first lists. */
export const newestFirst = (a: readonly [string, string], b: readonly [string, string]): number =>
  a[0] === b[0] ? (a[1] < b[1] ? 1 : a[1] > b[1] ? -1 : 0) : a[0] < b[0] ? 1 : -1;
