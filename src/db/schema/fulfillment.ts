import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** `backfilled`: captured before the merchant set its fulfillment URL and found by a batch read; never notified. */
export const FULFILLMENT_STATUSES = ["not_configured", "backfilled", "pending", "delivered", "failed"] as const;
export type FulfillmentStatus = (typeof FULFILLMENT_STATUSES)[number];

/** The fulfilment outbox: at most one row per transaction, written in the same D1 batch as its first capture. */
export const fulfillments = sqliteTable(
  "fulfillments",
  {
    merchantId: text("merchant_id").notNull(),
    transactionId: text("transaction_id").notNull(),
    /** Standard Webhooks `webhook-id`: stable across retries so the merchant can deduplicate. */
    messageId: text("message_id").notNull(),
    status: text("status", { enum: FULFILLMENT_STATUSES }).notNull(),
    attempts: integer("attempts").notNull().default(0),
    lastError: text("last_error"),
    /** While set in the future, one consumer owns the delivery attempt; others back off. */
    leaseUntil: text("lease_until"),
    requestedAt: text("requested_at").notNull(),
    deliveredAt: text("delivered_at"),
    /**
     * The merchant's HTTP status for the attempt that delivered (0028): that attempt is this row's, not a
     * `fulfillment_attempts` row (the timeline reads it here); null when undelivered or delivered before 0028.
     */
    deliveredHttpStatus: integer("delivered_http_status"),
    /** When the merchant acknowledged this dead-lettered notification (0015): it keeps `fulfillment_failing` open until then. */
    failureAcknowledgedAt: text("failure_acknowledged_at"),
  },
  (t) => [
    primaryKey({ columns: [t.merchantId, t.transactionId] }),
    // Pending rows only (0026): the stalled-row sweep and the `fulfillment_failing` alert read them; settled rows leave it.
    index("fulfillments_pending").on(t.requestedAt).where(sql`${t.status} = 'pending'`),
    index("fulfillments_failed_unacknowledged")
      .on(t.merchantId, t.requestedAt)
      .where(sql`${t.status} = 'failed' AND ${t.failureAcknowledgedAt} IS NULL`),
  ],
);
