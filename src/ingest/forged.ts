import { type SQL, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { events, merchants } from "../db/schema";
import type { EventRecord } from "../transactions/inbox";

/**
 * Adds the deliveries of events judged forged (fetch-back refused them for good) to their merchant's counter, one
 * statement per merchant. A forged id is asked twice: the deliveries its first, `pending`, inbox row counted are read
 * back here, so this must run before the inbox write of the same D1 batch (applySnapshots runs `extra` first), and the
 * ones of this batch are added; an event counts at least once (its recheck stands for the delivery that started it).
 */
export function countForgedDeliveries(rejected: readonly EventRecord[]): SQL[] {
  return [...Map.groupBy(rejected, (record) => record.merchantId)].map(([merchantId, records]) => {
    const rows = JSON.stringify(records.map((record) => ({ id: record.eventId, deliveries: record.deliveries })));
    const now = records.reduce((latest, record) => (record.now > latest ? record.now : latest), "");
    return sql`UPDATE ${merchants} SET
      forged_deliveries = forged_deliveries + (
        SELECT coalesce(sum(max(1, (j.value ->> '$.deliveries') + coalesce(e.deliveries, 0))), 0)
        FROM json_each(${rows}) AS j
        LEFT JOIN ${events} AS e ON e.merchant_id = ${merchantId} AND e.id = j.value ->> '$.id' AND e.outcome = 'pending'
      ),
      last_forged_at = ${now}
      WHERE id = ${merchantId}`;
  });
}

/** Rejected inbox rows are kept this long: long enough to explain a flood, short enough that forged ids do not pile up. */
export const REJECTED_EVENTS_KEPT_MS = 7 * 24 * 3_600_000;
/** Rows deleted per run at most, so one statement stays short; a larger backlog goes over the next runs. */
export const REJECTED_EVENTS_PRUNED_PER_RUN = 5_000;

/**
 * Deletes rejected inbox rows processed more than REJECTED_EVENTS_KEPT_MS before `now`, at most
 * REJECTED_EVENTS_PRUNED_PER_RUN of them (in no particular order). Rejected rows have no transaction, so the search walks
 * `events_transaction` at (merchant, NULL) per merchant instead of the whole inbox. A pruned id delivered again is
 * verified again: the count on the merchant stays, the row does not.
 */
export function rejectedEventsPrune(now: number): SQL {
  const before = new Date(now - REJECTED_EVENTS_KEPT_MS).toISOString();
  return sql`DELETE FROM ${events} WHERE rowid IN (
    SELECT e.rowid FROM ${merchants} AS m CROSS JOIN ${events} AS e ON e.merchant_id = m.id AND e.transaction_id IS NULL
    WHERE e.outcome = 'rejected' AND e.processed_at < ${before}
    LIMIT ${REJECTED_EVENTS_PRUNED_PER_RUN})`;
}

/** Runs `rejectedEventsPrune` (one statement); returns how many rows went. */
export async function pruneRejectedEvents(db: Database, now: number): Promise<number> {
  return (await db.run(rejectedEventsPrune(now))).meta.changes;
}
