import type { Database } from "../db/client";
import { recordShardSize } from "../db/shard-growth";
import { bindingOf, measureShard, PLACEMENT_LIMIT, type Shard } from "../db/shards";
import { type AdminAlertCheck, settleAdminAlerts } from "./admin-alerts";

/** A `shard_capacity` alert opens past each of these shares of a shard's capacity, one alert per threshold. */
export const CAPACITY_THRESHOLDS = [PLACEMENT_LIMIT, 0.9, 0.95] as const;

const percent = (share: number): string => `${Math.round(share * 1000) / 10}%`;

/**
 * Which `shard_capacity` conditions hold for a shard of `bytes` out of `capacityBytes`: one subject per threshold
 * (`DB_SHARD_1:90`), holding while the shard is past it, cleared once it is back at or under it.
 */
export function capacityCheck({ index, bytes, capacityBytes }: { index: number; bytes: number; capacityBytes: number }): AdminAlertCheck {
  const binding = bindingOf(index);
  const used = bytes / capacityBytes;
  const past = CAPACITY_THRESHOLDS.filter((threshold) => bytes > threshold * capacityBytes);
  const cleared = CAPACITY_THRESHOLDS.filter((threshold) => !past.includes(threshold));
  const subject = (threshold: number) => `${binding}:${Math.round(threshold * 100)}`;
  const holding = past.map((threshold) => ({
    subject: subject(threshold),
    detail:
      `Shard ${binding} is ${percent(used)} full (used ${Math.round(used * 10_000) / 10_000}: ${bytes} of ${capacityBytes} bytes), ` +
      `past the ${percent(threshold)} threshold. Past ${percent(PLACEMENT_LIMIT)} it takes no new merchant; add a shard before D1 ` +
      "refuses writes at 100%.",
  }));
  return { holding, cleared: cleared.map(subject) };
}

/**
 * The cron's shard step: measures the shard, records its size for days to full (once an hour, kept 8 days) and opens or
 * resolves its `shard_capacity` alerts, all on the directory. A shard that fails the read throws (the step fails on it).
 */
export async function watchShardCapacity({
  directory,
  shard,
  capacityBytes,
  now,
}: {
  directory: Database;
  shard: Shard;
  capacityBytes: number;
  now: number;
}) {
  const bytes = await measureShard(shard.db);
  // A runtime that reports no size has nothing to record or to alert on.
  if (bytes === undefined) return { shard_size_unknown: 1 };
  const samples = await recordShardSize({ directory, shard: shard.index, bytes, now });
  const check = capacityCheck({ index: shard.index, bytes, capacityBytes });
  const alerts = await settleAdminAlerts({ db: directory, kind: "shard_capacity", check, now });
  return { ...samples, shard_capacity_alerts_opened: alerts.opened, shard_capacity_alerts_resolved: alerts.resolved };
}
