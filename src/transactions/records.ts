import { and, eq, inArray, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Database } from "../db/client";
import { fulfillments, operations, transactions } from "../db/schema";
import type { TransactionSnapshot } from "../smart-router/schemas";
import type { SnapshotSource, StoredState } from "./state-machine";
import { CAPTURED_STATUSES } from "./status";

export type Statement = BatchItem<"sqlite">;

/** D1 binds at most 100 parameters per statement. */
const MAX_PARAMS = 100;

const key = (merchantId: string, transactionId: string) => `${merchantId}\u0000${transactionId}`;

/** Loads the stored state of many transactions in a few queries, keyed by merchant and transaction id. */
export async function loadStoredStates(db: Database, wanted: readonly { merchantId: string; transactionId: string }[]) {
  const byMerchant = new Map<string, Set<string>>();
  for (const { merchantId, transactionId } of wanted) {
    const ids = byMerchant.get(merchantId) ?? new Set<string>();
    ids.add(transactionId);
    byMerchant.set(merchantId, ids);
  }
  const states = new Map<string, StoredState>();
  for (const [merchantId, idSet] of byMerchant) {
    const ids = [...idSet];
    for (let i = 0; i < ids.length; i += MAX_PARAMS - 1) {
      const rows = await db
        .select({ id: transactions.id, status: transactions.status, snapshotVersion: transactions.snapshotVersion })
        .from(transactions)
        .where(and(eq(transactions.merchantId, merchantId), inArray(transactions.id, ids.slice(i, i + MAX_PARAMS - 1))));
      for (const row of rows) states.set(key(merchantId, row.id), { status: row.status, snapshotVersion: row.snapshotVersion });
    }
  }
  return { get: (merchantId: string, transactionId: string) => states.get(key(merchantId, transactionId)) ?? null };
}

function transactionRow(merchantId: string, snapshot: TransactionSnapshot, version: string, source: SnapshotSource, now: string) {
  return {
    merchantId,
    id: snapshot.id,
    projectId: snapshot.project_id,
    invoiceId: snapshot.invoice_id ?? null,
    customerId: snapshot.customer_id ?? null,
    name: snapshot.name ?? null,
    paymentType: snapshot.payment_type ?? null,
    gatewayName: snapshot.gateway_name ?? null,
    status: snapshot.status,
    currency: snapshot.currency,
    amount: snapshot.amount,
    authorizedAmount: snapshot.authorized_amount ?? "0",
    capturedAmount: snapshot.captured_amount ?? "0",
    refundedAmount: snapshot.refunded_amount ?? "0",
    availableAmount: snapshot.available_amount ?? "0",
    voidedAmount: snapshot.voided_amount ?? "0",
    metadata: snapshot.metadata ?? {},
    sandbox: snapshot.sandbox ?? false,
    errorCode: snapshot.error_code ?? null,
    errorMessage: snapshot.error_message ?? null,
    threeDSStatus: snapshot.three_d_s_status ?? null,
    chargedback: snapshot.chargedback ?? false,
    createdAt: snapshot.created_at,
    snapshotVersion: version,
    lastEventId: source.eventId,
    lastEventName: source.eventName,
    lastEventFiredAt: source.firedAt,
    updatedAt: now,
  };
}

const capturedList = sql.raw([...CAPTURED_STATUSES].map((status) => `'${status}'`).join(", "));

/**
 * Upserts the transaction as compare-and-set: the row changes only if the snapshot is newer than what is stored and does
 * not move a captured payment back, so concurrent consumers cannot overwrite a newer record with an older one.
 */
export function upsertTransaction(
  db: Database,
  merchantId: string,
  snapshot: TransactionSnapshot,
  version: string,
  source: SnapshotSource,
  now: string,
) {
  const row = transactionRow(merchantId, snapshot, version, source, now);
  const { merchantId: _m, id: _i, ...changes } = row;
  const set = Object.fromEntries(
    Object.keys(changes).map((field) => {
      const column = transactions[field as keyof typeof changes];
      return [field, sql.raw(`excluded.${column.name}`)];
    }),
  );
  return db
    .insert(transactions)
    .values(row)
    .onConflictDoUpdate({
      target: [transactions.merchantId, transactions.id],
      set,
      setWhere: sql`excluded.snapshot_version > ${transactions.snapshotVersion}
        AND NOT (${transactions.status} IN (${capturedList}) AND excluded.status NOT IN (${capturedList}))`,
    });
}

/** Inserts operations not stored yet; an operation id is stored once whatever number of snapshots repeat it. */
export function insertOperations(db: Database, merchantId: string, snapshot: TransactionSnapshot): Statement[] {
  const rows = (snapshot.operations ?? []).map((op) => ({
    merchantId,
    id: op.id,
    transactionId: snapshot.id,
    type: op.type,
    amount: op.amount ?? "0",
    currency: op.currency ?? null,
    isAttempt: op.is_attempt ?? false,
    hasFailed: op.has_failed ?? null,
    isAccountable: op.is_accountable ?? null,
    gatewayOperationId: op.gateway_operation_id ?? null,
    errorCode: op.error_code ?? null,
    errorMessage: op.error_message ?? null,
    paymentType: op.payment_type ?? null,
    metadata: op.metadata ?? null,
    createdAt: op.created_at,
  }));
  const perStatement = Math.floor(MAX_PARAMS / 15);
  const statements: Statement[] = [];
  for (let i = 0; i < rows.length; i += perStatement) {
    statements.push(
      db
        .insert(operations)
        .values(rows.slice(i, i + perStatement))
        .onConflictDoNothing(),
    );
  }
  return statements;
}

/** Adds the fulfilment outbox row the first time a transaction is seen captured; returns the row only when it is new. */
export function requestFulfillment(db: Database, merchantId: string, transactionId: string, configured: boolean, now: string) {
  return db
    .insert(fulfillments)
    .values({
      merchantId,
      transactionId,
      messageId: `msg_${crypto.randomUUID().replaceAll("-", "")}`,
      status: configured ? "pending" : "not_configured",
      requestedAt: now,
    })
    .onConflictDoNothing()
    .returning({ merchantId: fulfillments.merchantId, transactionId: fulfillments.transactionId, status: fulfillments.status });
}
