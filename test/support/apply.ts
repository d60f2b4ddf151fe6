import { openDatabase } from "../../src/db/client";
import type { TransactionSnapshot } from "../../src/smart-router/schemas";
import { applySnapshots, type VerifiedSnapshot } from "../../src/transactions/apply";
import type { EventRecord } from "../../src/transactions/inbox";
import { dbFor } from "./shards";

// Snapshots written straight through the apply (as a queue batch of webhooks would be), for tests of what it stores.

export const CREATED = "2026-11-01T10:00:00.000Z";
let sequence = 0;

export const op = (transactionId: string, n: number, type: string, extra: Record<string, unknown> = {}) => ({
  id: `tr_op_${transactionId.slice(3)}x${n}`,
  transaction_id: transactionId,
  type,
  amount: "10.00",
  currency: "EUR",
  is_attempt: false,
  has_failed: false,
  created_at: new Date(Date.parse(CREATED) + n * 1000).toISOString(),
  ...extra,
});

/** A snapshot of `transactionId` with `count` operations (authorization first, then captures). */
export function snapshot(transactionId: string, status: string, count: number | null, extra: Record<string, unknown> = {}) {
  const operations =
    count === null ? null : Array.from({ length: count }, (_, n) => op(transactionId, n, n < 2 ? "authorization" : "capture"));
  const captured = status === "completed";
  return {
    id: transactionId,
    project_id: "test-proj_fold",
    status,
    currency: "EUR",
    amount: "10.00",
    captured,
    captured_amount: captured ? "10.00" : "0",
    created_at: CREATED,
    operations,
    ...extra,
  } as unknown as TransactionSnapshot;
}

export /** Applies snapshots as webhooks of one merchant (each its own event, fired in the order given unless said). */
async function apply(merchantId: string, snapshots: TransactionSnapshot[], d1?: D1Database) {
  const now = new Date().toISOString();
  const verified = snapshots.map((item): VerifiedSnapshot => {
    sequence += 1;
    const eventId = `ev_fold_${sequence}`;
    const firedAt = new Date(Date.parse(CREATED) + sequence * 1000).toISOString();
    return {
      merchantId,
      snapshot: item,
      source: { kind: "event", eventId, eventName: `transaction.${item.status}`, firedAt },
      inbox: { eventId, deliveries: 1, receivedAt: now, now },
    };
  });
  return applySnapshots({
    db: openDatabase(d1 ?? (await dbFor(merchantId))),
    snapshots: verified,
    fulfillment: () => "not_configured",
    now,
  });
}

/** An inbox record as the consumer builds it (transactions/inbox.ts `EventRecord`): a pending captured event, one delivery. */
export const inboxRecord = (
  merchantId: string,
  eventId: string,
  over: Partial<EventRecord> & Pick<EventRecord, "receivedAt" | "now">,
): EventRecord => ({
  merchantId,
  eventId,
  name: "transaction.captured",
  transactionId: null,
  firedAt: null,
  outcome: "pending",
  detail: null,
  deliveries: 1,
  ...over,
});
