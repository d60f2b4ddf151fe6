import { type SQL, sql } from "drizzle-orm";
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
    // json_each of row values (id and delivery count), summed in an UPDATE: not an id list.
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
