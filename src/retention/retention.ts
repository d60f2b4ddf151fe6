import type { Database } from "../db/client";
import { archiveHistories } from "./archive";
import type { ArchiveBucket } from "./archive-format";
import { AUDIT_KEPT_DAYS, archivePageRun, auditPages, deadLetterPages, type PageRun } from "./pages";
import { daysBefore, pruneBookkeeping } from "./prune";

/**
 * The start of the UTC day `days` days before `now`: pages take whole days, so a day's rows go in one run's pages instead of
 * a page of the few rows that crossed the window every run.
 */
export const dayCutoff = (now: number, days: number) => `${daysBefore(now, days).slice(0, 10)}T00:00:00.000Z`;

/** The failures of a run's archives as one error naming the merchants (their rows stay in D1; the next run tries again). */
function failed(failures: { merchantId: string; error: unknown }[], result: Record<string, number>): AggregateError {
  return new AggregateError(
    failures.map((failure) => failure.error),
    `archive failed for ${failures.map((failure) => failure.merchantId || "(no merchant)").join(", ")}; ${JSON.stringify(result)}`,
  );
}

const pageFailures = (run: PageRun) => run.failures.map((failure) => ({ merchantId: failure.scope, error: failure.error }));

/**
 * The Cron Trigger's retention step at `now`: moves the histories (with their timelines) of transactions unchanged for
 * `retentionDays` to R2, all but the operations of those still in flight (archive.ts, OBJECTS_PER_RUN objects a run at
 * most), then the dead letters of the days past `retentionDays` (pages.ts, PAGES_PER_RUN pages a run at most), then
 * prunes bookkeeping rows past their windows
 * (prune.ts, PRUNED_PER_TABLE_PER_RUN rows per table a run at most). Each part runs whatever the others did; the step then
 * fails, naming the merchants whose archive failed.
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
  const letters = await archivePageRun({ db, bucket, table: deadLetterPages, cutoff: dayCutoff(now, retentionDays), now });
  const pruned = await pruneBookkeeping({ db, now, retentionDays });
  const result = {
    archive_objects_stored: archive.objectsStored,
    archive_transactions: archive.transactionsArchived,
    archive_records: archive.recordsArchived,
    archive_merchants_served: archive.merchantsServed,
    dead_letter_pages_stored: letters.pagesStored,
    dead_letters_archived: letters.rowsArchived,
    ...Object.fromEntries(Object.entries(pruned).map(([name, count]) => [`pruned_${name}`, count])),
  };
  const failures = [...archive.failures, ...pageFailures(letters)];
  if (failures.length > 0) throw failed(failures, result);
  return result;
}

/**
 * The Cron Trigger's audit step (on `DB`, where the audit is): entries of the days past AUDIT_KEPT_DAYS move to R2,
 * PAGES_PER_RUN pages a run at most; `GET /admin/audit` reads them back (audit-archive.ts).
 */
export async function archiveAudit({
  db,
  bucket,
  now,
}: {
  db: Database;
  bucket: ArchiveBucket;
  now: number;
}): Promise<Record<string, number>> {
  const run = await archivePageRun({ db, bucket, table: auditPages, cutoff: dayCutoff(now, AUDIT_KEPT_DAYS), now });
  const result = { audit_pages_stored: run.pagesStored, audit_entries_archived: run.rowsArchived };
  if (run.failures.length > 0) throw failed(pageFailures(run), result);
  return result;
}
