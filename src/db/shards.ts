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

// A merchant moves only by a move (src/moves/), which fences its old shard before the directory switches: an entry is
// kept DIRECTORY_TTL_MS, so a stale one sends a write into the fence (a retry) at worst, and the move's cleaning waits
// longer than this before the old shard's rows go. Ids not found are not kept. About 80 bytes a merchant.
export const DIRECTORY_TTL_MS = 10_000;
const shardOfMerchant = new Map<string, { shard: number; until: number }>();

/** The shard index of a merchant, from memory within DIRECTORY_TTL_MS of its lookup; undefined for an unknown merchant. */
export async function shardIndexOf(env: AppEnv, merchantId: string): Promise<number | undefined> {
  const known = shardOfMerchant.get(merchantId);
  if (known !== undefined && Date.now() < known.until) return known.shard;
  const row = await directoryDatabase(env)
    .select({ shard: merchantShards.shard })
    .from(merchantShards)
    .where(eq(merchantShards.merchantId, merchantId))
    .get();
  if (row) rememberShard(merchantId, row.shard);
  else shardOfMerchant.delete(merchantId);
  return row?.shard;
}

/** Forgets this isolate's directory entries (all, or one merchant's): after a write met a move's fence, or a switch here. */
export function forgetMerchantShards(merchantId?: string): void {
  if (merchantId === undefined) shardOfMerchant.clear();
  else shardOfMerchant.delete(merchantId);
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
 * A shard's size in bytes, from a read of a real table (`merchants`, which every query of a merchant joins, so a shard
 * that is unreachable or unmigrated fails it where `SELECT 1` would still answer). D1 refuses `PRAGMA page_count`
 * (SQLITE_AUTH), so the size is the `meta.size_after` every D1 query reports (undefined where a runtime reports none).
 * Throws what D1 throws.
 */
export async function measureShard(db: Database): Promise<number | undefined> {
  const size = (await db.run(sql`SELECT 1 FROM merchants LIMIT 1`)).meta.size_after;
  return typeof size === "number" ? size : undefined;
}

/** Probes one shard (`measureShard`): its size when it answers, D1's reason when it does not. */
async function probeShard({ index, db }: Shard): Promise<ShardHealth & { bytes?: number }> {
  try {
    return { shard: index, binding: bindingOf(index), ok: true, bytes: await measureShard(db) };
  } catch (error) {
    return { shard: index, binding: bindingOf(index), ok: false, reason: safeErrorMessage(error) };
  }
}

/** Probes every shard side by side (`measureShard`); the answer names each shard's state, never its size. */
export async function probeShards(env: AppEnv): Promise<ShardHealth[]> {
  const probes = await Promise.all(shardsOf(env).map(probeShard));
  return probes.map(({ bytes: _bytes, ...health }) => health);
}

/** Past this share of its capacity a shard takes no new merchant (contract, "Shards: watch and move"). */
export const PLACEMENT_LIMIT = 0.8;
/**
 * Free bytes within this share of capacity of the most free are a tie, broken by the fewest merchants: D1's size moves
 * by pages with every write (and the directory and audit live on DB), so a few MB say nothing about which shard fills first.
 */
export const PLACEMENT_TIE = 0.01;

/** What placement knows of a shard: whether it answered its probe, its size, and how many merchants the directory puts on it. */
export interface PlacementCandidate {
  index: number;
  ok: boolean;
  bytes: number | undefined;
  merchants: number;
}

/**
 * The shard a new merchant goes to: of the shards that answered and are not past PLACEMENT_LIMIT of `capacityBytes`, the
 * one with the most free bytes; within PLACEMENT_TIE of it, the fewest merchants, then the lowest index. Undefined when
 * none can take it. A size a runtime does not report counts as empty (D1 and miniflare always report one).
 */
export function choosePlacement(candidates: readonly PlacementCandidate[], capacityBytes: number): number | undefined {
  const open = candidates
    .filter((candidate) => candidate.ok && (candidate.bytes ?? 0) <= capacityBytes * PLACEMENT_LIMIT)
    .map((candidate) => ({ ...candidate, free: capacityBytes - (candidate.bytes ?? 0) }));
  const most = Math.max(...open.map((candidate) => candidate.free));
  const roomiest = open.filter((candidate) => candidate.free >= most - capacityBytes * PLACEMENT_TIE);
  const [first, ...rest] = roomiest;
  if (!first) return undefined;
  return rest.reduce((best, candidate) => (candidate.merchants < best.merchants ? candidate : best), first).index;
}

/**
 * The shard a new merchant goes to (`choosePlacement`), from a probe of every shard and the directory's merchant counts.
 * None answering, or every one that answers past PLACEMENT_LIMIT, is a 503 before anything is claimed.
 */
export async function shardForNewMerchant({ env, capacityBytes }: { env: AppEnv; capacityBytes: number }): Promise<Shard> {
  const [counted, probes] = await Promise.all([
    directoryDatabase(env).select({ shard: merchantShards.shard, merchants: count() }).from(merchantShards).groupBy(merchantShards.shard),
    Promise.all(shardsOf(env).map(probeShard)),
  ]);
  const load = new Map(counted.map((row) => [row.shard, row.merchants]));
  const candidates = probes.map((probe) => ({
    index: probe.shard,
    ok: probe.ok,
    bytes: probe.bytes,
    merchants: load.get(probe.shard) ?? 0,
  }));
  const chosen = choosePlacement(candidates, capacityBytes);
  if (chosen !== undefined) return shardAt(env, chosen);
  if (probes.some((probe) => probe.ok)) {
    // A full shard frees no room by itself: the operator adds a shard (or raises SHARD_CAPACITY_BYTES); the cron's alerts say which.
    throw new ApiError("service_unavailable", `every shard that answers is past ${PLACEMENT_LIMIT * 100}% of its capacity; add a shard`, {
      "Retry-After": "3600",
    });
  }
  throw new ApiError("service_unavailable", "no database can take a new merchant now; retry later", { "Retry-After": "30" });
}

/** Records where a merchant lives once its registration committed there (this isolate knows at once). */
export function rememberShard(merchantId: string, shard: number): void {
  shardOfMerchant.set(merchantId, { shard, until: Date.now() + DIRECTORY_TTL_MS });
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
