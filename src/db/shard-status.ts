import { sql } from "drizzle-orm";
import type { AppEnv } from "../env";
import type { Database } from "./client";
import { safeErrorMessage } from "./errors";
import { bindingOf, shardsOf } from "./shards";

/** What one D1 database may hold (D1's limit per database): `used` is measured against it. */
export const SHARD_CAPACITY_BYTES = 10_000_000_000;

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

/**
 * Reads one shard: its merchant count, its last applied migration (wrangler's `d1_migrations`) and its size. D1 refuses
 * `PRAGMA page_count` (SQLITE_AUTH), so the size is the `meta.size_after` every D1 query reports.
 */
export async function shardStatus(db: Database, index: number): Promise<ShardStatus> {
  const [merchants, migration] = await Promise.all([
    read(db, sql`SELECT count(*) AS n FROM merchants`, (row) => Number(row?.n ?? 0)),
    read(db, sql`SELECT name FROM d1_migrations ORDER BY id DESC LIMIT 1`, (row) => (typeof row?.name === "string" ? row.name : null)),
  ]);
  const failed = [merchants, migration].find((result) => "error" in result);
  const bytes = [merchants, migration].map((result) => ("bytes" in result ? result.bytes : undefined)).find((size) => size !== undefined);
  const status: ShardStatus = {
    binding: bindingOf(index),
    index,
    ok: failed === undefined && readValue(migration) !== null,
    merchants: readValue(merchants),
    bytes: bytes ?? null,
    capacity_bytes: SHARD_CAPACITY_BYTES,
    used: bytes === undefined ? null : Math.round((bytes / SHARD_CAPACITY_BYTES) * 10_000) / 10_000,
    migration: readValue(migration),
  };
  if (failed && "error" in failed) return { ...status, error: safeErrorMessage(failed.error) };
  if (!status.ok) return { ...status, error: "no migration applied" };
  return status;
}

/** Every bound shard's status, in order; each shard is read on its own, so one failing shard fails only its entry. */
export function shardStatuses(env: AppEnv): Promise<ShardStatus[]> {
  return Promise.all(shardsOf(env).map(({ db, index }) => shardStatus(db, index)));
}
