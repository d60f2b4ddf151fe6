import type { EventRow, FulfillmentRow, OperationRow, TransactionRow } from "../db/rows";

/** The columns of a transaction row the status API shows (endpoint messages keep exactly these: transactions/stream.ts). */
export const PRESENTED_COLUMNS = [
  "id",
  "status",
  "amount",
  "currency",
  "authorizedAmount",
  "capturedAmount",
  "refundedAmount",
  "availableAmount",
  "paymentType",
  "gatewayName",
  "invoiceId",
  "name",
  "metadata",
  "sandbox",
  "createdAt",
  "updatedAt",
  "lastEventId",
  "lastEventName",
  "lastEventFiredAt",
] as const satisfies readonly (keyof TransactionRow)[];
export type PresentedRow = Pick<TransactionRow, (typeof PRESENTED_COLUMNS)[number]>;

/** The transaction as merchants see it (contract.md, Status API); amounts stay the decimal strings Smart Router sent. */
export function presentTransaction(
  row: PresentedRow,
  fulfillment: Pick<FulfillmentRow, "status" | "requestedAt" | "deliveredAt"> | null,
  fulfillmentConfigured: boolean,
) {
  return {
    id: row.id,
    status: row.status,
    amount: row.amount,
    currency: row.currency,
    authorized_amount: row.authorizedAmount,
    captured_amount: row.capturedAmount,
    refunded_amount: row.refundedAmount,
    available_amount: row.availableAmount,
    payment_type: row.paymentType,
    gateway_name: row.gatewayName,
    invoice_id: row.invoiceId,
    name: row.name,
    metadata: row.metadata,
    sandbox: row.sandbox,
    created_at: row.createdAt,
    updated_at: row.updatedAt,
    last_event: row.lastEventId ? { id: row.lastEventId, name: row.lastEventName, fired_at: row.lastEventFiredAt } : null,
    fulfillment: fulfillment
      ? { status: fulfillment.status, requested_at: fulfillment.requestedAt, delivered_at: fulfillment.deliveredAt }
      : { status: fulfillmentConfigured ? "awaiting_capture" : "not_configured", requested_at: null, delivered_at: null },
  };
}

/** One operation as `GET /v1/transactions/{id}/operations` lists it, from D1 or from the archive alike. */
export function presentOperation(op: OperationRow) {
  return {
    id: op.id,
    type: op.type,
    amount: op.amount,
    currency: op.currency,
    is_attempt: op.isAttempt,
    has_failed: op.hasFailed,
    is_accountable: op.isAccountable,
    gateway_operation_id: op.gatewayOperationId,
    error_code: op.errorCode,
    error_message: op.errorMessage,
    payment_type: op.paymentType,
    metadata: op.metadata,
    created_at: op.createdAt,
  };
}

/** One event of `GET /v1/transactions/{id}/events`; null for inbox rows outside the history (pending, rejected, ignored). */
export function presentAppliedEvent(event: EventRow) {
  if (event.outcome !== "applied" && event.outcome !== "stale") return null;
  return {
    id: event.id,
    name: event.name,
    fired_at: event.firedAt,
    outcome: event.outcome,
    deliveries: event.deliveries,
    first_received_at: event.firstReceivedAt,
    processed_at: event.processedAt,
  };
}
