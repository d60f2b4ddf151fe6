import { and, asc, eq, gte, lt } from "drizzle-orm";
import type { Database } from "./client";
import { shardSizeSamples } from "./schema";

const DAY_MS = 86_400_000;
/** Days to full are projected from the growth over this many days (issue 21: "the last 7 days' growth"). */
export const GROWTH_WINDOW_DAYS = 7;
/** Samples are kept a day longer than the window, so the window's oldest hour is still there when it is read. */
export const SAMPLE_KEEP_DAYS = 8;

/** The UTC hour of a time, `YYYY-MM-DDTHH`: one sample per shard and hour. */
const hourOf = (time: number): string => new Date(time).toISOString().slice(0, 13);

/**
 * Records the size of shard `shard` once per hour (a second run in the same hour writes nothing) and drops its samples
 * older than SAMPLE_KEEP_DAYS, in one D1 batch on the directory; answers how many samples each statement wrote and dropped.
 */
export async function recordShardSize({
  directory,
  shard,
  bytes,
  now,
}: {
  directory: Database;
  shard: number;
  bytes: number;
  now: number;
}) {
  const [written, dropped] = await directory.batch([
    directory
      .insert(shardSizeSamples)
      .values({ shard, hour: hourOf(now), sampledAt: new Date(now).toISOString(), bytes })
      .onConflictDoNothing()
      .returning({ hour: shardSizeSamples.hour }),
    directory
      .delete(shardSizeSamples)
      .where(and(eq(shardSizeSamples.shard, shard), lt(shardSizeSamples.hour, hourOf(now - SAMPLE_KEEP_DAYS * DAY_MS))))
      .returning({ hour: shardSizeSamples.hour }),
  ]);
  return { samples_written: written.length, samples_pruned: dropped.length };
}

/** One measured size: when, and how many bytes. */
export interface SizeSample {
  sampledAt: string;
  bytes: number;
}

/**
 * Bytes a day a shard grew by, from the oldest to the newest of `samples` (those of the last GROWTH_WINDOW_DAYS); null
 * with fewer than 2 samples, none apart in time, or no growth (a shard that shrank or held still never fills).
 */
export function growthPerDay(samples: readonly SizeSample[]): number | null {
  const sorted = [...samples].sort((a, b) => (a.sampledAt < b.sampledAt ? -1 : a.sampledAt > b.sampledAt ? 1 : 0));
  const [first] = sorted;
  const last = sorted.at(-1);
  if (!first || !last) return null;
  const days = (Date.parse(last.sampledAt) - Date.parse(first.sampledAt)) / DAY_MS;
  if (!(days > 0) || last.bytes <= first.bytes) return null;
  return Math.round((last.bytes - first.bytes) / days);
}

/** Days until `bytes` reaches `capacityBytes` at `growth` bytes a day, to a tenth; null without growth or a size. */
export function daysToFull({ bytes, capacityBytes, growth }: { bytes: number | null; capacityBytes: number; growth: number | null }) {
  if (bytes === null || growth === null || growth <= 0) return null;
  return Math.max(0, Math.round(((capacityBytes - bytes) / growth) * 10) / 10);
}

/** The samples of the last GROWTH_WINDOW_DAYS, shard by shard: one read of a table of at most 192 rows a shard (8 days × 24). */
export async function recentSizes({ directory, now }: { directory: Database; now: number }): Promise<Map<number, SizeSample[]>> {
  const rows = await directory
    .select()
    .from(shardSizeSamples)
    .where(gte(shardSizeSamples.sampledAt, new Date(now - GROWTH_WINDOW_DAYS * DAY_MS).toISOString()))
    .orderBy(asc(shardSizeSamples.shard), asc(shardSizeSamples.sampledAt));
  const byShard = new Map<number, SizeSample[]>();
  for (const row of rows) byShard.set(row.shard, [...(byShard.get(row.shard) ?? []), { sampledAt: row.sampledAt, bytes: row.bytes }]);
  return byShard;
}
