import { and, eq, type SQL, sql } from "drizzle-orm";
import { transactionReferences, transactions } from "../db/schema";
import type { TransactionWrite } from "./records";

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
  JOIN json_each(json_array(t.invoice_id, t.name, t.metadata ->> '$.order_id', t.metadata ->> '$.reference')) AS v
  WHERE v.type = 'text' AND length(v.value) BETWEEN 1 AND ${MAX_REFERENCE_LENGTH}`;

/**
 * Keeps `transaction_references` equal to the written records' references: removes the ones a record no longer carries
 * (metadata edited, name changed), then adds the new ones. Must run after the upsert of the same D1 batch. A record whose
 * references did not change writes no row.
 */
export function recordReferences(writes: readonly TransactionWrite[]): SQL[] {
  const statements: SQL[] = [];
  for (let i = 0; i < writes.length; i += WRITES_PER_STATEMENT) {
    const keys = JSON.stringify(writes.slice(i, i + WRITES_PER_STATEMENT).map((w) => ({ merchant_id: w.merchantId, id: w.snapshot.id })));
    // Seeks `transaction_references_transaction` per written record: never reads another record's references.
    statements.push(
      sql`DELETE FROM ${transactionReferences}
        WHERE (merchant_id, transaction_id) IN (SELECT j.value ->> '$.merchant_id', j.value ->> '$.id' FROM json_each(${keys}) AS j)
          AND (merchant_id, reference, transaction_id) NOT IN (${currentReferences(keys)})`,
      sql`INSERT INTO ${transactionReferences} (merchant_id, reference, transaction_id) ${currentReferences(keys)}
        ON CONFLICT DO NOTHING`,
    );
  }
  return statements;
}

/** The merchant's reference rows equal to `reference` (exact, case-sensitive: SQLite's binary collation), from their primary key. */
export const referenceMatches = (merchantId: string, reference: string) =>
  and(eq(transactionReferences.merchantId, merchantId), eq(transactionReferences.reference, reference));
