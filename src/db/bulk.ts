import { SQL, type SQLWrapper, sql } from "drizzle-orm";
import { SQLiteAsyncDialect, type SQLiteTable } from "drizzle-orm/sqlite-core";

/** Rows per statement: one JSON parameter carries them all… */
const ROWS_PER_STATEMENT = 500;
/** …and at most this many characters of JSON, half of D1's 2 MB value limit (a record carries its operation history). */
const JSON_PER_STATEMENT = 1_000_000;

/**
 * Rows cut into JSON texts of at most `ROWS_PER_STATEMENT` rows and `JSON_PER_STATEMENT` characters (a single larger row
 * is a text of its own). The loop ends: each pass takes at least one row.
 */
export function chunkJson(rows: readonly unknown[]): string[] {
  const chunks: string[] = [];
  let current: string[] = [];
  let length = 0;
  for (const row of rows) {
    const text = JSON.stringify(row);
    if (current.length > 0 && (current.length === ROWS_PER_STATEMENT || length + text.length + 1 > JSON_PER_STATEMENT)) {
      chunks.push(`[${current.join(",")}]`);
      current = [];
      length = 0;
    }
    current.push(text);
    length += text.length + 1;
  }
  if (current.length > 0) chunks.push(`[${current.join(",")}]`);
  return chunks;
}

/** A row keyed by SQL column name; JSON booleans arrive in SQLite as 1/0, objects must be passed as JSON text. */
export type JsonRow = Record<string, string | number | boolean | null>;

/**
 * `INSERT INTO table (cols) SELECT … FROM json_each(?)` — many rows in one statement with one bound parameter, where
 * multi-row VALUES would hit D1's 100-parameter limit every few rows. `tail` is the ON CONFLICT / RETURNING clause.
 * Column names come from our own code, never from input.
 */
export function insertJsonRows(
  table: SQLiteTable,
  rows: readonly JsonRow[],
  tail: SQL = sql``,
  /** Columns computed by SQL for every row (e.g. a timestamp taken when the statement runs), replacing a row key of the name. */
  computed: Record<string, SQL> = {},
): SQL[] {
  return insertJsonChunks(table, rows, tail, computed).map((item) => item.statement);
}

/** `insertJsonRows`' statements, each with the JSON text it binds: for a statement that must read the same rows beside it. */
export function insertJsonChunks(
  table: SQLiteTable,
  rows: readonly JsonRow[],
  tail: SQL = sql``,
  computed: Record<string, SQL> = {},
): { chunk: string; statement: SQL }[] {
  const first = rows[0];
  if (!first) return [];
  // A computed column may read the row's own key of that name (`value ->> '$.col'`) rather than store it as is.
  const columns = Object.keys(first).filter((column) => !(column in computed));
  const names = sql.raw([...columns, ...Object.keys(computed)].map((column) => `"${column}"`).join(", "));
  const values = sql.join([...columns.map((column) => sql.raw(`value ->> '$.${column}'`)), ...Object.values(computed)], sql.raw(", "));
  // `WHERE true` keeps SQLite from reading ON CONFLICT as part of the SELECT's join.
  return chunkJson(rows).map((chunk) => ({
    chunk,
    statement: sql`INSERT INTO ${table} (${names}) SELECT ${values} FROM json_each(${chunk}) WHERE true ${tail}`,
  }));
}

/**
 * Our own constant strings (statuses) as SQL literals, `'a', 'b'`: where a partial index or a compare-and-set must see the
 * values themselves, not bound parameters. Never for input.
 */
export function sqlLiterals(values: Iterable<string>): SQL {
  return sql.raw([...values].map((value) => `'${value.replaceAll("'", "''")}'`).join(", "));
}

const dialect = new SQLiteAsyncDialect();

/** Anything the D1 batch can run: raw SQL, or a drizzle query builder. */
export type BatchStatement = SQL | { toSQL(): { sql: string; params: unknown[] } };

/**
 * Runs statements as one D1 batch (one transaction). Goes to the D1 binding directly because drizzle's D1 batch cannot
 * carry raw SQL with parameters; results are D1's own, rows keyed by column name.
 */
export function runBatch(d1: D1Database, statements: readonly BatchStatement[]): Promise<D1Result<Record<string, unknown>>[]> {
  const prepared = statements.map((statement) => {
    const query = statement instanceof SQL ? dialect.sqlToQuery(statement) : statement.toSQL();
    return d1.prepare(query.sql).bind(...query.params);
  });
  return d1.batch(prepared);
}

/** A merchant's record id, the key of every per-merchant table. */
export interface MerchantKey {
  merchantId: string;
  id: string;
}

/** Ids per lookup query; they travel as one JSON parameter (see `inList`), so this only bounds the statement's size. */
const IDS_PER_LOOKUP = 500;

/**
 * `column IN (…values)` with the whole list bound as one JSON parameter, so no list length can reach D1's limit of 100
 * bound parameters per statement (a batch of 100 deliveries once did, with the merchant id and a status beside them).
 * SQLite still searches the index once per value.
 */
export function inList(column: SQLWrapper, values: readonly string[]): SQL {
  return sql`${column} IN (SELECT value FROM json_each(${JSON.stringify(values)}))`;
}

/** `(a, b) IN (…pairs)`, the pairs bound as one JSON parameter of `[a, b]` arrays, as `inList` binds its values. */
export function inPairList(columns: readonly [SQLWrapper, SQLWrapper], pairs: readonly (readonly [string, string])[]): SQL {
  return sql`(${columns[0]}, ${columns[1]}) IN (SELECT value ->> 0, value ->> 1 FROM json_each(${JSON.stringify(pairs)}))`;
}

/**
 * Looks up many per-merchant rows in a few `merchant_id = ? AND id IN (…)` queries, and returns the found rows keyed by
 * merchant and id. `select` runs one query for one merchant and at most 500 distinct ids (use `inList` for them).
 */
export async function lookUpByMerchant<R extends { id: string }>(
  wanted: readonly MerchantKey[],
  select: (merchantId: string, ids: string[]) => Promise<R[]>,
): Promise<{ get(key: MerchantKey): R | undefined }> {
  const key = (merchantId: string, id: string) => `${merchantId}\u0000${id}`;
  const found = new Map<string, R>();
  for (const [merchantId, group] of Map.groupBy(wanted, (item) => item.merchantId)) {
    const ids = [...new Set(group.map((item) => item.id))];
    for (let i = 0; i < ids.length; i += IDS_PER_LOOKUP) {
      for (const row of await select(merchantId, ids.slice(i, i + IDS_PER_LOOKUP))) found.set(key(merchantId, row.id), row);
    }
  }
  return { get: ({ merchantId, id }) => found.get(key(merchantId, id)) };
}
