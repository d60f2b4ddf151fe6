import { and, eq, type SQL, sql } from "drizzle-orm";
import { inList, insertJsonRows, type JsonRow, lookUpByMerchant, type MerchantKey, sqlLiterals } from "../db/bulk";
import type { Database } from "../db/client";
import { type FulfillmentStatus, fulfillments, nowIso, operations, transactions } from "../db/schema";
import type { TransactionSnapshot } from "../smart-router/schemas";
import { CAPTURED_STATUSES, PRE_CAPTURE_STATUSES } from "../smart-router/status";
import type { SnapshotSource, StoredState } from "./state-machine";

/** Loads the stored state of many transactions in a few queries. */
export async function loadStoredStates(db: Database, wanted: readonly MerchantKey[]) {
  const found = await lookUpByMerchant(wanted, (merchantId, ids) =>
    db
      .select({ id: transactions.id, status: transactions.status, snapshotVersion: transactions.snapshotVersion })
      .from(transactions)
      .where(and(eq(transactions.merchantId, merchantId), inList(transactions.id, ids))),
  );
  return {
    get: (merchantId: string, transactionId: string): StoredState | null => found.get({ merchantId, id: transactionId }) ?? null,
  };
}

/** The transaction row (SQL column names) a snapshot stands for. */
function transactionRow(merchantId: string, snapshot: TransactionSnapshot, version: string, source: SnapshotSource): JsonRow {
  const event = source.kind === "event" ? source : null;
  return {
    merchant_id: merchantId,
    id: snapshot.id,
    project_id: snapshot.project_id,
    invoice_id: snapshot.invoice_id ?? null,
    customer_id: snapshot.customer_id ?? null,
    name: snapshot.name ?? null,
    payment_type: snapshot.payment_type ?? null,
    gateway_name: snapshot.gateway_name ?? null,
    status: snapshot.status,
    currency: snapshot.currency,
    amount: snapshot.amount,
    authorized_amount: snapshot.authorized_amount ?? "0",
    captured_amount: snapshot.captured_amount ?? "0",
    refunded_amount: snapshot.refunded_amount ?? "0",
    available_amount: snapshot.available_amount ?? "0",
    voided_amount: snapshot.voided_amount ?? "0",
    metadata: JSON.stringify(snapshot.metadata ?? {}),
    sandbox: snapshot.sandbox ?? false,
    error_code: snapshot.error_code ?? null,
    error_message: snapshot.error_message ?? null,
    three_d_s_status: snapshot.three_d_s_status ?? null,
    chargedback: snapshot.chargedback ?? false,
    created_at: snapshot.created_at,
    snapshot_version: version,
    last_event_id: event?.eventId ?? null,
    last_event_name: event?.eventName ?? null,
    last_event_fired_at: event?.firedAt ?? null,
  };
}

export interface TransactionWrite {
  merchantId: string;
  snapshot: TransactionSnapshot;
  version: string;
  source: SnapshotSource;
}

/**
 * Upserts transactions as compare-and-set, the same rule as `decide` (state-machine.ts): a row changes only if the
 * snapshot is newer than what is stored and does not move a captured payment back onto the pre-capture path, so
 * concurrent consumers cannot overwrite a newer record with an older one. `updated_at` is taken when the statement runs
 * inside the committing D1 batch (D1 has one writer, so stamps follow commit order), never when the consumer started:
 * a merchant polling `updated_after` cannot miss a change committed late by a slower consumer. Returns the rows written.
 */
export function upsertTransactions(writes: readonly TransactionWrite[]): SQL[] {
  const rows = writes.map((w) => transactionRow(w.merchantId, w.snapshot, w.version, w.source));
  const first = rows[0];
  if (!first) return [];
  // The record counts its own status changes (an endpoint's `sequence`, transactions/stream.ts): 1 when first stored.
  const assignments = sql.raw(
    [
      ...[...Object.keys(first), "updated_at"]
        .filter((column) => column !== "merchant_id" && column !== "id")
        .map((column) => `"${column}" = excluded."${column}"`),
      `"status_changes" = transactions.status_changes + (excluded.status IS NOT transactions.status)`,
    ].join(", "),
  );
  return insertJsonRows(
    transactions,
    rows,
    sql`ON CONFLICT (merchant_id, id) DO UPDATE SET ${assignments}
      WHERE excluded.snapshot_version > transactions.snapshot_version
        AND NOT (transactions.status IN (${sqlLiterals(CAPTURED_STATUSES)}) AND excluded.status IN (${sqlLiterals(PRE_CAPTURE_STATUSES)}))
      RETURNING merchant_id, id, snapshot_version, last_event_id`,
    { updated_at: nowIso, status_changes: sql`1` },
  );
}

/** The operation rows of a snapshot. */
export function operationRows(merchantId: string, snapshot: TransactionSnapshot): JsonRow[] {
  return (snapshot.operations ?? []).map((op) => ({
    merchant_id: merchantId,
    id: op.id,
    transaction_id: snapshot.id,
    type: op.type,
    amount: op.amount ?? "0",
    currency: op.currency ?? null,
    is_attempt: op.is_attempt ?? false,
    has_failed: op.has_failed ?? null,
    is_accountable: op.is_accountable ?? null,
    gateway_operation_id: op.gateway_operation_id ?? null,
    error_code: op.error_code ?? null,
    error_message: op.error_message ?? null,
    payment_type: op.payment_type ?? null,
    metadata: op.metadata ? JSON.stringify(op.metadata) : null,
    created_at: op.created_at,
  }));
}

/** Inserts operations not stored yet: an operation id is stored once whatever number of snapshots repeat it. */
export function storeOperations(rows: readonly JsonRow[]): SQL[] {
  return insertJsonRows(operations, rows, sql`ON CONFLICT (merchant_id, id) DO NOTHING`);
}

/** Adds fulfilment outbox rows the first time transactions are seen captured; each statement returns only the new rows. */
export function requestFulfillments(
  requests: readonly { merchantId: string; transactionId: string; status: FulfillmentStatus }[],
  now: string,
): SQL[] {
  const rows = requests.map((request) => ({
    merchant_id: request.merchantId,
    transaction_id: request.transactionId,
    message_id: `msg_${crypto.randomUUID().replaceAll("-", "")}`,
    status: request.status,
    attempts: 0,
    requested_at: now,
  }));
  return insertJsonRows(
    fulfillments,
    rows,
    sql`ON CONFLICT (merchant_id, transaction_id) DO NOTHING RETURNING merchant_id, transaction_id, status`,
  );
}
