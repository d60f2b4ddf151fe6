import type {
  alerts,
  archiveObjects,
  batches,
  events,
  fetchBacks,
  fulfillmentAttempts,
  fulfillments,
  merchants,
  operations,
  transactionStatusChanges,
  transactions,
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
