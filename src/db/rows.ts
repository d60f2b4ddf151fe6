import type {
  adminAudit,
  alerts,
  archiveObjects,
  archivePages,
  batches,
  deadLetters,
  events,
  fetchBacks,
  fulfillmentAttempts,
  fulfillments,
  merchants,
  operations,
  transactionStatusChanges,
  transactions,
  webhookDeliveries,
} from "./schema";

/** Rows as drizzle reads them, one type per table, inferred from the schema (never written out by hand). */
export type MerchantRow = typeof merchants.$inferSelect;
export type TransactionRow = typeof transactions.$inferSelect;
export type OperationRow = typeof operations.$inferSelect;
export type EventRow = typeof events.$inferSelect;
export type FulfillmentRow = typeof fulfillments.$inferSelect;
export type AlertRow = typeof alerts.$inferSelect;
export type BatchRow = typeof batches.$inferSelect;
export type ArchiveObjectRow = typeof archiveObjects.$inferSelect;
export type FetchBackRow = typeof fetchBacks.$inferSelect;
export type StatusChangeRow = typeof transactionStatusChanges.$inferSelect;
export type FulfillmentAttemptRow = typeof fulfillmentAttempts.$inferSelect;
export type DeliveryRow = typeof webhookDeliveries.$inferSelect;
export type DeadLetterRow = typeof deadLetters.$inferSelect;
export type AdminAuditRow = typeof adminAudit.$inferSelect;
export type ArchivePageRow = typeof archivePages.$inferSelect;
