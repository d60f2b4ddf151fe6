import { sql } from "drizzle-orm";
import type { AppEnv } from "../env";
import { log } from "../lib/log";
import type { Database } from "./client";
import { safeErrorMessage } from "./errors";
import { placedHere } from "./fence";
import { daysToFull, growthPerDay, recentSizes, type SizeSample } from "./shard-growth";
import { bindingOf, directoryDatabase, shardsOf } from "./shards";

/** How full and how migrated one shard is (`GET /admin/shards`); a field it could not read is null. */
export interface ShardStatus {
  binding: string;
  index: number;
  ok: boolean;
  merchants: number | null;
  bytes: number | null;
  capacity_bytes: number;
  used: number | null;
  migration: string | null;
  /** Bytes a day over the last 7 days' samples (src/db/shard-growth.ts); null with fewer than 2 or no growth. */
  growth_bytes_per_day: number | null;
  /** Days until `bytes` reaches `capacity_bytes` at that growth; null when there is none. */
  days_to_full: number | null;
  /** D1's own message for the first read that failed (never a bound value or a secret); only when `ok` is false. */
  error?: string;
}

/** One read of a shard: its value, and the database size D1 reports after it (`meta.size_after`). */
type Read<T> = { value: T; bytes: number | undefined } | { error: unknown };

async function read<T>(
  db: Database,
  query: ReturnType<typeof sql>,
  pick: (row: Record<string, unknown> | undefined) => T,
): Promise<Read<T>> {
  try {
    const result = await db.run(query);
    const size = result.meta.size_after;
    return { value: pick(result.results[0] as Record<string, unknown> | undefined), bytes: typeof size === "number" ? size : undefined };
  } catch (error) {
    return { error };
  }
}

const readValue = <T>(result: Read<T>): T | null => ("value" in result ? result.value : null);

/** The share of `capacityBytes` that `bytes` fills, to four decimals (`used`). */
export const usedShare = (bytes: number, capacityBytes: number): number => Math.round((bytes / capacityBytes) * 10_000) / 10_000;

/** Reads one shard: its merchant count, its last applied migration (wrangler's `d1_migrations`) and its size. */
export async function shardStatus({
  db,
  index,
  capacityBytes,
  samples = [],
}: {
  db: Database;
  index: number;
  capacityBytes: number;
  samples?: readonly SizeSample[];
}): Promise<ShardStatus> {
  const [merchants, migration] = await Promise.all([
    // Merchants placed here: a move's copy arriving (or a moved one's rows awaiting the cleaning) counts on its other shard.
    read(db, sql`SELECT count(*) AS n FROM merchants AS m WHERE ${placedHere(sql`m.id`)}`, (row) => Number(row?.n ?? 0)),
    read(db, sql`SELECT name FROM d1_migrations ORDER BY id DESC LIMIT 1`, (row) => (typeof row?.name === "string" ? row.name : null)),
  ]);
  const failed = [merchants, migration].find((result) => "error" in result);
  const bytes = [merchants, migration].map((result) => ("bytes" in result ? result.bytes : undefined)).find((size) => size !== undefined);
  const growth = growthPerDay(samples);
  const status: ShardStatus = {
    binding: bindingOf(index),
    index,
    ok: failed === undefined && readValue(migration) !== null,
    merchants: readValue(merchants),
    bytes: bytes ?? null,
    capacity_bytes: capacityBytes,
    used: bytes === undefined ? null : usedShare(bytes, capacityBytes),
    migration: readValue(migration),
    growth_bytes_per_day: growth,
    days_to_full: daysToFull({ bytes: bytes ?? null, capacityBytes, growth }),
  };
  if (failed && "error" in failed) return { ...status, error: safeErrorMessage(failed.error) };
  if (!status.ok) return { ...status, error: "no migration applied" };
  return status;
}

/** The size samples of every shard, or none when the directory cannot be read (the shards' own reads still answer). */
async function samplesOrNone(env: AppEnv, now: number): Promise<Map<number, SizeSample[]>> {
  try {
    return await recentSizes({ directory: directoryDatabase(env), now });
  } catch (error) {
    log("error", "shards.size_samples_unreadable", { error: safeErrorMessage(error) });
    return new Map();
  }
}

/** Every bound shard's status, in order; each shard is read on its own, so one failing shard fails only its entry. */
export async function shardStatuses({
  env,
  capacityBytes,
  now,
}: {
  env: AppEnv;
  capacityBytes: number;
  now: number;
}): Promise<ShardStatus[]> {
  const samples = await samplesOrNone(env, now);
  return Promise.all(shardsOf(env).map(({ db, index }) => shardStatus({ db, index, capacityBytes, samples: samples.get(index) })));
}
