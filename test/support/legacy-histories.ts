import { env } from "cloudflare:workers";

// The three tables 0030 and 0034 replaced with the record's columns (`operations`, `transaction_status_changes`,
// `archived_histories`), as tests of migration 0035 fill them: what code before 0030/0034 wrote, or the release before
// 0035 could have left in them.

/** The statements of migration 0035, as `wrangler d1 migrations apply` runs them. */
export function migration0035(): string[] {
  const migration = env.TEST_MIGRATIONS.find((one) => one.name.startsWith("0035_"));
  if (!migration || migration.queries.length === 0) throw new Error("migration 0035 is missing");
  return migration.queries;
}

/** Runs migration 0035 on one shard, in one batch (a migration is one transaction); answers the rows each statement changed. */
export async function run0035(d1: D1Database): Promise<number[]> {
  const results = await d1.batch(migration0035().map((query) => d1.prepare(query)));
  return results.map((result) => result.meta.changes ?? 0);
}

/**
 * Moves what a record's columns hold into the tables, as code before 0030 (operations, status changes) and 0034
 * (archive names) stored it, and empties the columns: `kinds` says which. The record then reads as if its history
 * were only in the tables.
 */
export async function asBeforeTheColumns(
  d1: D1Database,
  {
    merchantId,
    transactionId,
    kinds = ["operations", "statuses", "names"],
  }: {
    merchantId: string;
    transactionId: string;
    kinds?: ("operations" | "statuses" | "names")[];
  },
) {
  const record = "FROM transactions AS t, json_each(t.%s) AS j WHERE t.merchant_id = ?1 AND t.id = ?2";
  const statements: D1PreparedStatement[] = [];
  if (kinds.includes("operations"))
    statements.push(
      d1.prepare(`INSERT INTO operations (merchant_id, id, transaction_id, type, amount, currency, is_attempt, has_failed,
          is_accountable, gateway_operation_id, error_code, error_message, payment_type, metadata, created_at)
        SELECT t.merchant_id, j.value ->> '$.id', t.id, j.value ->> '$.type', j.value ->> '$.amount', j.value ->> '$.currency',
          coalesce(j.value ->> '$.is_attempt', 0), j.value ->> '$.has_failed', j.value ->> '$.is_accountable',
          j.value ->> '$.gateway_operation_id', j.value ->> '$.error_code', j.value ->> '$.error_message',
          j.value ->> '$.payment_type', j.value -> '$.metadata', j.value ->> '$.created_at'
        ${record.replace("%s", "operation_history")}`),
      d1.prepare("UPDATE transactions SET operation_history = NULL WHERE merchant_id = ?1 AND id = ?2"),
    );
  if (kinds.includes("statuses"))
    statements.push(
      d1.prepare(`INSERT INTO transaction_status_changes (merchant_id, transaction_id, at, from_status, to_status, event_id, event_name, read_at)
        SELECT t.merchant_id, t.id, j.value ->> '$.at', j.value ->> '$.from', j.value ->> '$.to', j.value ->> '$.event_id',
          j.value ->> '$.event_name', j.value ->> '$.read_at'
        ${record.replace("%s", "status_history")} ORDER BY j.key`),
      d1.prepare("UPDATE transactions SET status_history = NULL WHERE merchant_id = ?1 AND id = ?2"),
    );
  if (kinds.includes("names"))
    statements.push(
      d1.prepare(`INSERT INTO archived_histories (merchant_id, transaction_id, archive_id)
        SELECT t.merchant_id, t.id, o.id ${record
          .replace("%s", "archive_names")
          .replace("WHERE", "JOIN archive_objects AS o ON o.key = 'history/' || t.merchant_id || '/' || j.value || '.ndjson.gz' WHERE")}`),
      d1.prepare("UPDATE transactions SET archive_names = NULL WHERE merchant_id = ?1 AND id = ?2"),
    );
  await d1.batch(statements.map((statement) => statement.bind(merchantId, transactionId)));
}

/** The merchant's rows in each of the three tables. */
export async function legacyRows(d1: D1Database, merchantId: string) {
  const count = async (table: string) =>
    (await d1.prepare(`SELECT count(*) AS n FROM ${table} WHERE merchant_id = ?`).bind(merchantId).first<{ n: number }>())?.n ?? 0;
  return {
    operations: await count("operations"),
    transaction_status_changes: await count("transaction_status_changes"),
    archived_histories: await count("archived_histories"),
  };
}

/** A record's three columns, parsed (null: NULL). */
export async function storedColumns(d1: D1Database, merchantId: string, transactionId: string) {
  const row = await d1
    .prepare("SELECT operation_history, status_history, archive_names FROM transactions WHERE merchant_id = ? AND id = ?")
    .bind(merchantId, transactionId)
    .first<{ operation_history: string | null; status_history: string | null; archive_names: string | null }>();
  const parse = <T>(text: string | null | undefined) => (text ? (JSON.parse(text) as T) : null);
  return {
    operations: parse<Record<string, unknown>[]>(row?.operation_history),
    statuses: parse<Record<string, string>[]>(row?.status_history),
    names: parse<string[]>(row?.archive_names),
  };
}

export const NO_LEGACY_ROWS = { operations: 0, transaction_status_changes: 0, archived_histories: 0 };
