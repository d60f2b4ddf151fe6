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

/**
 * Statuses of the path before a capture: the only ones a captured record refuses (a late `authorized` never overwrites
 * `completed`). Every other status, known or added by Smart Router later, is applied when its snapshot is newer.
 */
export const PRE_CAPTURE_STATUSES: ReadonlySet<string> = new Set(["waiting", "pending", "authorized", "pending-capture"]);

/**
 * Statuses that wait on Smart Router to move on (an APM completing, a manual capture, a dispute's outcome): the ones a lost
 * webhook would leave stuck, so reconciliation refreshes them. Settled payments are left to webhooks and `sync` batches.
 */
export const IN_FLIGHT_STATUSES = [
  "waiting",
  "pending",
  "authorized",
  "pending-capture",
  "in-review",
  "chargeback-initiated",
  "retrieval-request",
  "fraud-notification",
] as const satisfies readonly TransactionStatus[];
