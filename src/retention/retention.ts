import type { Database } from "../db/client";
import { archiveHistories } from "./archive";
import type { ArchiveBucket } from "./archive-format";
import { daysBefore, pruneBookkeeping } from "./prune";

/**
 * The Cron Trigger's retention step at `now`: moves the histories of transactions settled and unchanged for
 * `retentionDays` to R2 (archive.ts, OBJECTS_PER_RUN objects a run at most), then prunes bookkeeping rows past their
 * windows (prune.ts, PRUNED_PER_TABLE_PER_RUN rows per table a run at most). Pruning runs whatever the archive did; the
 * step then fails, naming the merchants whose archive failed (their rows stay in D1 and the next run tries again).
 */
export async function runRetention({
  db,
  bucket,
  now,
  retentionDays,
}: {
  db: Database;
  bucket: ArchiveBucket;
  now: number;
  retentionDays: number;
}): Promise<Record<string, number>> {
  const archive = await archiveHistories({ db, bucket, now, cutoff: daysBefore(now, retentionDays) });
  const pruned = await pruneBookkeeping({ db, now, retentionDays });
  const result = {
    archive_objects_stored: archive.objectsStored,
    archive_transactions: archive.transactionsArchived,
    archive_records: archive.recordsArchived,
    archive_merchants_served: archive.merchantsServed,
    ...Object.fromEntries(Object.entries(pruned).map(([name, count]) => [`pruned_${name}`, count])),
  };
  if (archive.failures.length > 0) {
    throw new AggregateError(
      archive.failures.map((failure) => failure.error),
      `archive failed for ${archive.failures.map((failure) => failure.merchantId).join(", ")}; ${JSON.stringify(result)}`,
    );
  }
  return result;
}
