/** Every transaction status Smart Router documents (smart-router.md §3). */
export const TRANSACTION_STATUSES = [
  "waiting",
  "pending",
  "authorized",
  "pending-capture",
  "completed",
  "failed",
  "voided",
  "refunded",
  "partially-refunded",
  "in-review",
  "blocked",
  "retrieval-request",
  "fraud-notification",
  "chargeback-initiated",
  "solved",
  "reversed",
] as const;
export type TransactionStatus = (typeof TRANSACTION_STATUSES)[number];

/** Statuses a transaction only reaches once captured: refunds, chargebacks and their outcomes are named transitions after `completed`. */
export const CAPTURED_STATUSES: ReadonlySet<string> = new Set([
  "completed",
  "refunded",
  "partially-refunded",
  "retrieval-request",
  "fraud-notification",
  "chargeback-initiated",
  "solved",
  "reversed",
]);

/** Statuses after which nothing is expected to change without a webhook we may have missed; reconciliation leaves them alone. */
export const SETTLED_STATUSES: ReadonlySet<string> = new Set(["failed", "voided", "refunded", "blocked", "solved", "reversed"]);
