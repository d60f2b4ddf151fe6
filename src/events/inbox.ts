import { and, eq, inArray, ne, sql } from "drizzle-orm";
import type { Database } from "../db/client";
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
 * Records an event in the inbox. The first final outcome sticks; later deliveries only add to the delivery count,
 * so replays and duplicates can never rewrite what happened.
 */
export function recordEvent(db: Database, record: EventRecord) {
  const settled = record.outcome !== "pending";
  return db
    .insert(events)
    .values({
      merchantId: record.merchantId,
      id: record.eventId,
      name: record.name,
      transactionId: record.transactionId,
      firedAt: record.firedAt,
      outcome: record.outcome,
      deliveries: record.deliveries,
      firstReceivedAt: record.receivedAt,
      processedAt: settled ? record.now : null,
      detail: record.detail,
    })
    .onConflictDoUpdate({
      target: [events.merchantId, events.id],
      set: {
        deliveries: sql`${events.deliveries} + ${record.deliveries}`,
        name: sql`coalesce(${events.name}, excluded.name)`,
        transactionId: sql`coalesce(${events.transactionId}, excluded.transaction_id)`,
        firedAt: sql`coalesce(${events.firedAt}, excluded.fired_at)`,
        outcome: sql`CASE WHEN ${events.outcome} = 'pending' THEN excluded.outcome ELSE ${events.outcome} END`,
        processedAt: sql`CASE WHEN ${events.outcome} = 'pending' THEN excluded.processed_at ELSE ${events.processedAt} END`,
        detail: sql`CASE WHEN ${events.outcome} = 'pending' THEN excluded.detail ELSE ${events.detail} END`,
      },
    });
}
