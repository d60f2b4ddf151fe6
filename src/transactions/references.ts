import { and, eq, type SQL, sql } from "drizzle-orm";
import { transactionReferences, transactions } from "../db/schema";
import { replacesStored, type TransactionWrite } from "./records";

/** The longest reference stored or searched, in characters (SQLite's `length`, code points): longer values are not indexed. */
export const MAX_REFERENCE_LENGTH = 200;

/** Writes per statement: their keys travel as one JSON parameter, as `insertJsonRows`' rows do. */
const WRITES_PER_STATEMENT = 500;

/**
 * The references the stored records of `keys` (a JSON array of `{merchant_id, id}`) carry now: invoice_id, name, and the
 * metadata's `order_id` and `reference` when they are text of 1 to MAX_REFERENCE_LENGTH characters. Read from what the
 * upsert stored, so a write that lost the compare-and-set leaves the winner's references.
 */
const currentReferences = (keys: string) => sql`SELECT DISTINCT t.merchant_id, v.value AS reference, t.id AS transaction_id
  FROM json_each(${keys}) AS j
  JOIN ${transactions} AS t ON t.merchant_id = j.value ->> '$.merchant_id' AND t.id = j.value ->> '$.id'
  JOIN json_each(${referenceFields(sql`t.invoice_id`, sql`t.name`, sql`t.metadata`)}) AS v
  WHERE v.type = 'text' AND length(v.value) BETWEEN 1 AND ${MAX_REFERENCE_LENGTH}`;

/** The references a record's columns carry, in SQL: the `json_each` values of the fields the search takes. */
const referenceFields = (invoiceId: SQL, name: SQL, metadata: SQL) =>
  sql`json_array(${invoiceId}, ${name}, ${metadata} ->> '$.order_id', ${metadata} ->> '$.reference')`;

/**
 * Removes the references a record will no longer carry once this apply's write replaces it (metadata edited, name
 * changed): must run before the upsert of the same D1 batch, which reads the same stored row, so the rule it repeats
 * (`replacesStored`) decides alike. The old references come from the stored record's columns and are deleted by their
 * own key, so no index by transaction is needed (0031 dropped it: one row fewer a reference written).
 */
export function removeReplacedReferences(writes: readonly TransactionWrite[]): SQL[] {
  const statements: SQL[] = [];
  for (let i = 0; i < writes.length; i += WRITES_PER_STATEMENT) {
    const incoming = JSON.stringify(
      writes.slice(i, i + WRITES_PER_STATEMENT).map((w) => ({
        merchant_id: w.merchantId,
        id: w.snapshot.id,
        version: w.version,
        status: w.snapshot.status,
        references: [
          w.snapshot.invoice_id ?? null,
          w.snapshot.name ?? null,
          w.snapshot.metadata?.order_id ?? null,
          w.snapshot.metadata?.reference ?? null,
        ],
      })),
    );
    const wins = replacesStored({ version: sql`j.value ->> '$.version'`, status: sql`j.value ->> '$.status'`, stored: "t" });
    statements.push(sql`DELETE FROM ${transactionReferences} WHERE (merchant_id, reference, transaction_id) IN (
      SELECT t.merchant_id, v.value, t.id FROM json_each(${incoming}) AS j
      JOIN ${transactions} AS t ON t.merchant_id = j.value ->> '$.merchant_id' AND t.id = j.value ->> '$.id'
      JOIN json_each(${referenceFields(sql`t.invoice_id`, sql`t.name`, sql`t.metadata`)}) AS v
      WHERE v.type = 'text' AND ${wins}
        AND v.value NOT IN (SELECT w.value FROM json_each(j.value -> '$.references') AS w WHERE w.type = 'text'))`);
  }
  return statements;
}

/**
 * Adds the references the written records carry now (must run after the upsert of the same D1 batch): a record whose
 * references did not change writes no row.
 */
export function recordReferences(writes: readonly TransactionWrite[]): SQL[] {
  const statements: SQL[] = [];
  for (let i = 0; i < writes.length; i += WRITES_PER_STATEMENT) {
    const keys = JSON.stringify(writes.slice(i, i + WRITES_PER_STATEMENT).map((w) => ({ merchant_id: w.merchantId, id: w.snapshot.id })));
    statements.push(
      sql`INSERT INTO ${transactionReferences} (merchant_id, reference, transaction_id) ${currentReferences(keys)}
        ON CONFLICT DO NOTHING`,
    );
  }
  return statements;
}

/** The merchant's reference rows equal to `reference` (exact, case-sensitive: SQLite's binary collation), from their primary key. */
export const referenceMatches = (merchantId: string, reference: string) =>
  and(eq(transactionReferences.merchantId, merchantId), eq(transactionReferences.reference, reference));
