import type { fulfillments, transactions } from "../db/schema";

type TransactionRow = typeof transactions.$inferSelect;
type FulfillmentRow = Pick<typeof fulfillments.$inferSelect, "status" | "requestedAt" | "deliveredAt">;

/** The transaction as merchants see it (contract.md, Status API); amounts stay the decimal strings Smart Router sent. */
export function presentTransaction(row: TransactionRow, fulfillment: FulfillmentRow | null, fulfillmentConfigured: boolean) {
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
