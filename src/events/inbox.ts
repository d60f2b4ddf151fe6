import { and, eq, ne, type SQL, sql } from "drizzle-orm";
import { inList, insertJsonRows, lookUpByMerchant, type MerchantKey } from "../db/bulk";
import type { Database } from "../db/client";
import { type EventOutcome, events } from "../db/schema";

/** Which of these events already have a final outcome, so a duplicate delivery costs no API call. */
export async function settledEvents(db: Database, wanted: readonly MerchantKey[]) {
  const found = await lookUpByMerchant(wanted, (merchantId, ids) =>
    db
      .select({ id: events.id })
      .from(events)
      .where(and(eq(events.merchantId, merchantId), inList(events.id, ids), ne(events.outcome, "pending"))),
  );
  return { has: (merchantId: string, eventId: string) => found.get({ merchantId, id: eventId }) !== undefined };
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
