import { and, eq, type SQL, sql } from "drizzle-orm";
import { chunkJson, inList, insertJsonRows, type JsonRow, lookUpByMerchant, type MerchantKey, sqlLiterals } from "../db/bulk";
import type { Database } from "../db/client";
import { encodeHistory, hasNewOperation, historyOperations, historyUnion } from "../db/operation-history";
import { type FulfillmentStatus, fulfillments, nowIso, transactions } from "../db/schema";
import { appendedStatusHistory, firstStatusHistory, statusEntry } from "../db/status-history";
import type { OperationSnapshot, TransactionSnapshot } from "../smart-router/schemas";
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

/** The transaction row (SQL column names) a write stands for. */
function transactionRow({ merchantId, snapshot, version, source, operations }: TransactionWrite): JsonRow {
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
    operation_history: encodeHistory(historyOperations(operations)),
    // The entry this write adds if it changes the status; the upsert stamps and places it (db/status-history.ts).
    status_history: statusEntry({
      to: snapshot.status,
      eventId: event?.eventId ?? null,
      eventName: event?.eventName ?? null,
      readAt: source.kind === "read" ? source.readAt : null,
    }),
  };
}

export interface TransactionWrite {
  merchantId: string;
  snapshot: TransactionSnapshot;
  version: string;
  source: SnapshotSource;
  /** The operations of every snapshot of the write's group, each id once (the newest snapshot's are among them). */
  operations: readonly OperationSnapshot[];
}

/**
 * The compare-and-set rule in SQL (`decide`, state-machine.ts): an incoming snapshot replaces the stored record `stored`
 * (a table name or alias) when it is newer and does not move a captured payment back onto the pre-capture path.
 */
export const replacesStored = ({ version, status, stored }: { version: SQL; status: SQL; stored: string }) => {
  const record = sql.raw(stored);
  return sql`${version} > ${record}.snapshot_version
    AND NOT (${record}.status IN (${sqlLiterals(CAPTURED_STATUSES)}) AND ${status} IN (${sqlLiterals(PRE_CAPTURE_STATUSES)}))`;
};

/** Columns an upsert never replaces: the key, and the histories it joins with what is stored. */
const KEPT_COLUMNS = ["merchant_id", "id", "operation_history", "status_history"];
/** Columns that say where a snapshot came from, not what it holds: a read equal in everything else changes nothing. */
const SOURCE_COLUMNS = ["snapshot_version", "last_event_id", "last_event_name", "last_event_fired_at"];

/**
 * SQL: the incoming row `incoming` (`excluded`, or `j.value` of a JSON row) holds what the stored record holds: every
 * content column equal (null-safe, as the upsert would store it) and as many operations (the version's first six
 * characters, state-machine.ts).
 */
function sameContent(incoming: "excluded" | "j.value", row: JsonRow): SQL {
  const value = (column: string) => (incoming === "excluded" ? `excluded."${column}"` : `(j.value ->> '$.${column}')`);
  const content = Object.keys(row).filter((column) => !KEPT_COLUMNS.includes(column) && !SOURCE_COLUMNS.includes(column));
  return sql.raw(
    `(substr(${value("snapshot_version")}, 1, 6) = substr(transactions.snapshot_version, 1, 6)
      AND ${content.map((column) => `transactions."${column}" IS ${value(column)}`).join(" AND ")})`,
  );
}

/**
 * A read newer than its record that shows nothing new (a reconciliation or batch refresh of an unchanged payment) only
 * advances the record's version, so that an older snapshot arriving later stays stale: `updated_at`, `last_event` and
 * every index entry stay as they were (the version is in no index), so a merchant polling `updated_after` does not see
 * the payment again, and the refresh writes one row instead of the record and its indexes. Runs after the upsert (which
 * leaves such a record alone) and after the stream (which so sees no change). A read that changes anything is the
 * upsert's, and this statement then finds the version equal and does nothing.
 */
export function touchUnchangedReads(writes: readonly TransactionWrite[]): SQL[] {
  const rows = writes.filter((write) => write.source.kind === "read").map(transactionRow);
  const first = rows[0];
  if (!first) return [];
  return chunkJson(rows).map(
    (chunk) => sql`UPDATE ${transactions} SET snapshot_version = j.value ->> '$.snapshot_version'
      FROM json_each(${chunk}) AS j
      WHERE transactions.merchant_id = j.value ->> '$.merchant_id' AND transactions.id = j.value ->> '$.id'
        AND j.value ->> '$.snapshot_version' > transactions.snapshot_version AND ${sameContent("j.value", first)}`,
  );
}

/**
 * Upserts transactions as compare-and-set, the same rule as `decide` (state-machine.ts): a row changes only if the
 * snapshot is newer than what is stored and does not move a captured payment back onto the pre-capture path, so
 * concurrent consumers cannot overwrite a newer record with an older one. `updated_at` is taken when the statement runs
 * inside the committing D1 batch (D1 has one writer, so stamps follow commit order), never when the consumer started:
 * a merchant polling `updated_after` cannot miss a change committed late by a slower consumer. Returns the rows written.
 */
export function upsertTransactions(writes: readonly TransactionWrite[]): SQL[] {
  const rows = writes.map(transactionRow);
  const first = rows[0];
  if (!first) return [];
  const replaced = [...Object.keys(first), "updated_at"].filter((column) => !KEPT_COLUMNS.includes(column));
  const assignments = sql.join(
    [
      sql.raw(replaced.map((column) => `"${column}" = excluded."${column}"`).join(", ")),
      // The record counts its own status changes (an endpoint's `sequence`, transactions/stream.ts): 1 when first stored.
      sql.raw(`"status_changes" = transactions.status_changes + (excluded.status IS NOT transactions.status)`),
      // What is stored joined with what came, against the row as it stands when the batch commits.
      sql`"operation_history" = ${historyUnion(sql`transactions.operation_history`, sql`excluded.operation_history`)}`,
      sql`"status_history" = ${appendedStatusHistory}`,
    ],
    sql.raw(", "),
  );
  return insertJsonRows(
    transactions,
    rows,
    sql`ON CONFLICT (merchant_id, id) DO UPDATE SET ${assignments}
      WHERE ${replacesStored({ version: sql`excluded.snapshot_version`, status: sql`excluded.status`, stored: "transactions" })}
        AND (excluded.last_event_id IS NOT NULL OR NOT ${sameContent("excluded", first)})
      RETURNING merchant_id, id, snapshot_version, last_event_id`,
    { updated_at: nowIso, status_changes: sql`1`, status_history: firstStatusHistory },
  );
}

/** Operations a stale snapshot carries that its record may lack: the history gains them though the record stays. */
export interface HistoryMerge {
  merchantId: string;
  transactionId: string;
  operations: readonly OperationSnapshot[];
}

/**
 * Adds the operations of stale snapshots to their records' histories. Only a snapshot with more operations than the
 * stored one writes (`n` against the stored version's count, state-machine.ts `snapshotVersion`): one that lost only on
 * the captured → pre-capture rule. Operations are append-only, so any other stale snapshot holds nothing new, and an
 * archived history (NULL, its count still in the version) is never brought back by an old snapshot.
 */
export function mergeOperationHistories(merges: readonly HistoryMerge[]): SQL[] {
  const rows = merges.map((merge) => ({
    merchant_id: merge.merchantId,
    id: merge.transactionId,
    n: merge.operations.length,
    operation_history: encodeHistory(historyOperations(merge.operations)),
  }));
  return chunkJson(rows).map(
    (chunk) => sql`UPDATE ${transactions} SET operation_history = ${historyUnion(sql`transactions.operation_history`, sql`w.history`)}
      FROM (SELECT value ->> '$.merchant_id' AS merchant_id, value ->> '$.id' AS id, value ->> '$.n' AS n,
              value ->> '$.operation_history' AS history FROM json_each(${chunk})) AS w
      WHERE transactions.merchant_id = w.merchant_id AND transactions.id = w.id
        AND w.n > CAST(substr(transactions.snapshot_version, 1, 6) AS INTEGER)
        AND ${hasNewOperation(sql`transactions.operation_history`, sql`w.history`)}`,
  );
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
