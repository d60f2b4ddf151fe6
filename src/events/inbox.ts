import { and, eq, inArray, ne, type SQL, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { insertJsonRows } from "../db/json-rows";
import { type EventOutcome, events } from "../db/schema";

const key = (merchantId: string, eventId: string) => `${merchantId}\u0000${eventId}`;

/** Which of these events already have a final outcome, so a duplicate delivery costs no API call. */
export async function settledEvents(db: Database, wanted: readonly { merchantId: string; eventId: string }[]) {
  const byMerchant = new Map<string, string[]>();
  for (const { merchantId, eventId } of wanted) byMerchant.set(merchantId, [...(byMerchant.get(merchantId) ?? []), eventId]);
  const settled = new Set<string>();
  for (const [merchantId, ids] of byMerchant) {
    for (let i = 0; i < ids.length; i += 98) {
      const rows = await db
        .select({ id: events.id })
        .from(events)
        .where(and(eq(events.merchantId, merchantId), inArray(events.id, ids.slice(i, i + 98)), ne(events.outcome, "pending")));
      for (const row of rows) settled.add(key(merchantId, row.id));
    }
  }
  return { has: (merchantId: string, eventId: string) => settled.has(key(merchantId, eventId)) };
}

export interface EventRecord {
  merchantId: string;
  eventId: string;
  name: string | null;
  transactionId: string | null;
  firedAt: string | null;
  outcome: EventOutcome;
  detail: string | null;
  deliveries: number;
  receivedAt: string;
  now: string;
}

/**
 * Records events in the inbox, all in one statement. The first final outcome sticks; later deliveries only add to the
 * delivery count, so replays and duplicates can never rewrite what happened.
 */
export function recordEvents(records: readonly EventRecord[]): SQL[] {
  const rows = records.map((record) => ({
    merchant_id: record.merchantId,
    id: record.eventId,
    name: record.name,
    transaction_id: record.transactionId,
    fired_at: record.firedAt,
    outcome: record.outcome,
    deliveries: record.deliveries,
    first_received_at: record.receivedAt,
    processed_at: record.outcome === "pending" ? null : record.now,
    detail: record.detail,
  }));
  const keep = (column: string) => sql.raw(`CASE WHEN events.outcome = 'pending' THEN excluded.${column} ELSE events.${column} END`);
  return insertJsonRows(
    events,
    rows,
    sql`ON CONFLICT (merchant_id, id) DO UPDATE SET
      deliveries = events.deliveries + excluded.deliveries,
      name = coalesce(events.name, excluded.name),
      transaction_id = coalesce(events.transaction_id, excluded.transaction_id),
      fired_at = coalesce(events.fired_at, excluded.fired_at),
      processed_at = ${keep("processed_at")},
      detail = ${keep("detail")},
      outcome = ${keep("outcome")}`,
  );
}
