import { and, eq, type SQL, sql } from "drizzle-orm";
import type { OperationSnapshot } from "../smart-router/schemas";
import { inList } from "./bulk";
import { transactions } from "./schema";

/*
 * A transaction's operation history lives in its record's row (`transactions.operation_history`, 0030): a JSON array of
 * the operations of every snapshot applied, each id once, null members left out; NULL once the history is archived.
 * Writing it costs no D1 row beyond the record's own upsert, where a row per operation cost two (the row and its index).
 * Rows of the `operations` table (before 0030) were merged into it by 0035, and are no longer read.
 */

/** One stored operation: Smart Router's fields as the status API shows them, normalised as the table stored them. */
type HistoryOperation = Record<string, string | boolean | Record<string, string>>;

/** A snapshot's operations as stored in the history (null members left out: the read puts them back). */
export function historyOperations(operations: readonly OperationSnapshot[] | null | undefined): HistoryOperation[] {
  return (operations ?? []).map((op) => {
    const stored: Record<string, unknown> = {
      id: op.id,
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
      metadata: op.metadata ?? null,
      created_at: op.created_at,
    };
    return Object.fromEntries(Object.entries(stored).filter(([, value]) => value !== null)) as HistoryOperation;
  });
}

/** The column's text for a list of operations: null for none (NULL is the empty history, and never erases one). */
export const encodeHistory = (operations: readonly HistoryOperation[]): string | null =>
  operations.length === 0 ? null : JSON.stringify(operations);

/**
 * `stored ∪ incoming` by operation id, stored entries first and kept (an operation is stored as first seen, as the
 * table's `ON CONFLICT DO NOTHING` kept it); a NULL side adds nothing. `json()` keeps each element an object through
 * the UNION. The order inside the array carries no meaning: every read sorts by (created_at, id).
 */
export const historyUnion = (stored: SQL, incoming: SQL): SQL => sql`CASE WHEN ${incoming} IS NULL THEN ${stored}
  WHEN ${stored} IS NULL THEN ${incoming}
  ELSE (SELECT json_group_array(json(v)) FROM (
    SELECT s.value AS v FROM json_each(${stored}) AS s
    UNION ALL
    SELECT i.value FROM json_each(${incoming}) AS i
      WHERE i.value ->> '$.id' NOT IN (SELECT s2.value ->> '$.id' FROM json_each(${stored}) AS s2)))
  END`;

/** `incoming` holds an operation id `stored` does not. */
export const hasNewOperation = (stored: SQL, incoming: SQL): SQL => sql`EXISTS (SELECT 1 FROM json_each(${incoming}) AS i
  WHERE i.value ->> '$.id' NOT IN (SELECT s.value ->> '$.id' FROM json_each(coalesce(${stored}, '[]')) AS s))`;

/**
 * A member of the history element `j` (the `json_each` alias of every read below), named as the table's column: D1
 * answers rows keyed by column name, so unnamed expressions would collide.
 */
const member = <T>(name: string, column: string) => sql<T>`j.value ->> ${`$.${name}`}`.as(column);
const flag = (name: string, column: string) =>
  sql<boolean | null>`j.value ->> ${`$.${name}`}`.mapWith((value) => Boolean(value)).as(column);

/** The history's elements as `operations` table rows (`OperationRow`): what the read-back and the archive take. */
export const historyOperationColumns = {
  // Raw column names: drizzle refuses a table's column in a select whose FROM is SQL.
  merchantId: sql<string>`transactions.merchant_id`.as("merchant_id"),
  id: member<string>("id", "id"),
  transactionId: sql<string>`transactions.id`.as("transaction_id"),
  type: member<string>("type", "type"),
  amount: member<string>("amount", "amount"),
  currency: member<string | null>("currency", "currency"),
  isAttempt: sql<boolean>`coalesce(j.value ->> '$.is_attempt', 0)`.mapWith((value) => Boolean(value)).as("is_attempt"),
  hasFailed: flag("has_failed", "has_failed"),
  isAccountable: flag("is_accountable", "is_accountable"),
  gatewayOperationId: member<string | null>("gateway_operation_id", "gateway_operation_id"),
  errorCode: member<string | null>("error_code", "error_code"),
  errorMessage: member<string | null>("error_message", "error_message"),
  paymentType: member<string | null>("payment_type", "payment_type"),
  metadata: sql<Record<string, string> | null>`j.value -> '$.metadata'`
    .mapWith((value) => JSON.parse(String(value)) as Record<string, string>)
    .as("metadata"),
  createdAt: member<string>("created_at", "created_at"),
};

/** Each stored operation of each record: `FROM` this, `SELECT` `historyOperationColumns` (or the alias `j`). */
export const historyOperationsFrom = sql`${transactions} CROSS JOIN json_each(${transactions.operationHistory}) AS j`;

/** The history elements of these transactions of the merchant. */
export const historyOf = (merchantId: string, transactionIds: readonly string[]) =>
  and(eq(transactions.merchantId, merchantId), inList(transactions.id, transactionIds));
