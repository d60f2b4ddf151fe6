import { index, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * Webhook deliveries waiting for their merchant's Smart Router budget (our pacer or an open circuit breaker): parked here
 * instead of cycling on the shared queue (ingest/parking.ts). `body` is the queue message as the edge wrote it, with its
 * retry state; `claimed_until` is a resume's lease on the row.
 */
export const parkedDeliveries = sqliteTable(
  "parked_deliveries",
  {
    merchantId: text("merchant_id").notNull(),
    deliveryId: text("delivery_id").notNull(),
    body: text("body").notNull(),
    parkedAt: text("parked_at").notNull(),
    claimedUntil: text("claimed_until"),
  },
  (t) => [primaryKey({ columns: [t.merchantId, t.deliveryId] }), index("parked_deliveries_order").on(t.merchantId, t.parkedAt)],
);

/** The one pending wake-up message per merchant with parked deliveries, and when it is due. */
export const parkedWakeups = sqliteTable("parked_wakeups", {
  merchantId: text("merchant_id").primaryKey(),
  dueAt: text("due_at").notNull(),
});
