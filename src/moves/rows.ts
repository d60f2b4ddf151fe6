import { type SQL, sql } from "drizzle-orm";
import { runBatch } from "../db/bulk";
import type { Database } from "../db/client";
import { columnList, MOVED_TABLES, type MovedTable, ownedRows, ownIdColumn, walkedRows } from "./tables";

/** A row as D1 answers it, keyed by column name. */
export type Row = Record<string, unknown>;

/** The rows of one read, as D1 answers them (a batch of one statement: raw SQL with its parameters). */
export async function readRows(db: Database, query: SQL): Promise<Row[]> {
  const [result] = await runBatch(db.$client, [query]);
  return result?.results ?? [];
}

const table = (moved: MovedTable): SQL => sql.raw(`"${moved.name}"`);
const keyOf = (moved: MovedTable, row: Row): unknown[] => moved.key.map((column) => row[column]);

export { keyOf };

/** `(x.k1, x.k2) > (?, ?)`: after a key in the table's key order (`alias`: the table's alias in the statement). */
function afterKey(moved: MovedTable, after: readonly unknown[], alias = "x."): SQL {
  const values = sql.join(
    after.map((value) => sql`${value}`),
    sql.raw(", "),
  );
  return moved.key.length === 1 ? sql`${columnList(moved.key, alias)} > ${after[0]}` : sql`(${columnList(moved.key, alias)}) > (${values})`;
}

/** Where a keyset page of the merchant's rows of `moved` starts and how much it may take. */
export interface PageRead {
  moved: MovedTable;
  merchantId: string;
  /** The key the last page stopped at (null: from the start). */
  after: readonly unknown[] | null;
  /** Rows per page. */
  limit: number;
  /** Keys, whatever their merchant, a walked table's page reads at most past `after`. */
  scanKeys: number;
}

/**
 * One keyset page of the merchant's rows of `moved`, in key order, after `after`. A walked table's page reads at most
 * `scanKeys` keys of the table, so it may copy none: `end` is then the last key it read (null: it reached the table's end,
 * or the table is not walked), the cursor the next page starts from. Both reads are one batch: one snapshot.
 */
export async function readPage(read: PageRead & { db: Database }): Promise<{ rows: Row[]; end: unknown[] | null }> {
  if (!read.moved.walk) return { rows: await readRows(read.db, pageQuery(read)), end: null };
  const [end, rows] = await runBatch(read.db.$client, [scanEndQuery(read), pageQuery(read)]);
  const last = end?.results[0];
  return { rows: rows?.results ?? [], end: last ? keyOf(read.moved, last) : null };
}

/**
 * The last key a walked page reads: the `scanKeys`-th after `after`, in key order, whatever its merchant; no row when
 * fewer are left (the scan reaches the table's end). Its plan is tested: it walks the primary key, never sorts.
 */
export function scanEndQuery({ moved, after, scanKeys }: Pick<PageRead, "moved" | "after" | "scanKeys">): SQL {
  const key = columnList(moved.key, "k.");
  const from = after ? sql` WHERE ${afterKey(moved, after, "k.")}` : sql``;
  return sql`SELECT ${key} FROM ${table(moved)} AS k${from} ORDER BY ${key} LIMIT 1 OFFSET ${scanKeys - 1}`;
}

/**
 * `(x.k1, x.k2) <= (the scan's end)`: a range bound SQLite walks the key up to, so the page stops after `scanKeys` keys
 * however few are the merchant's. Past the table's end the bound is X'' in every column (a BLOB sorts after any number or
 * text): the rest of the table, fewer than `scanKeys` keys.
 */
function withinScan(read: Pick<PageRead, "moved" | "after" | "scanKeys">): SQL {
  const end = sql.raw(read.moved.key.map((column) => `ifnull(e."${column}", X'')`).join(", "));
  return sql`(${columnList(read.moved.key, "x.")}) <= (SELECT ${end} FROM (SELECT 1) LEFT JOIN (${scanEndQuery(read)}) AS e)`;
}

/**
 * The rows statement of `readPage` (its plan is tested: each page resumes in key order, never sorting the merchant's
 * rows; a walked table's page reads a bounded range of its key).
 */
export function pageQuery(read: PageRead): SQL {
  const { moved, merchantId, after, limit } = read;
  const terms = [walkedRows(moved, merchantId), ...(after ? [afterKey(moved, after)] : []), ...(moved.walk ? [withinScan(read)] : [])];
  return sql`SELECT x.* FROM ${table(moved)} AS x WHERE ${sql.join(terms, sql.raw(" AND "))} ORDER BY ${columnList(moved.key, "x.")} LIMIT ${limit}`;
}

/** The JSON keys (arrays, as the change log writes them) as a row-value list. */
function keysIn(moved: MovedTable, keys: string, mapValue: (column: string, value: SQL) => SQL = (_c, value) => value): SQL {
  const parts = sql.join(
    moved.key.map((column, i) => mapValue(column, sql.raw(`value ->> ${i}`))),
    sql.raw(", "),
  );
  const target = moved.key.length === 1 ? columnList(moved.key) : sql`(${columnList(moved.key)})`;
  return sql`${target} IN (SELECT ${parts} FROM json_each(${keys}))`;
}

/** The source rows of `moved` that still exist for these keys (a JSON array of key arrays). */
export function readByKeys({ db, moved, keys }: { db: Database; moved: MovedTable; keys: readonly unknown[][] }): Promise<Row[]> {
  return readRows(db, sql`SELECT * FROM ${table(moved)} WHERE ${keysIn(moved, JSON.stringify(keys))}`);
}

/** What a write on the target is guarded by: the page's compare-and-set was won by this run (`move_progress.token`). */
export interface Guard {
  moveId: string;
  tbl: string;
  token: string;
}
const guarded = ({ moveId, tbl, token }: Guard): SQL =>
  sql`EXISTS (SELECT 1 FROM move_progress WHERE move_id = ${moveId} AND tbl = ${tbl} AND token = ${token})`;

/** A copied column's value from a JSON row: its own, or another table's own id mapped to the target's. */
function columnValue(moved: MovedTable, moveId: string, column: string, value: SQL = sql.raw(`value ->> '$.${column}'`)): SQL {
  const other = moved.remap?.[column];
  if (!other) return value;
  return sql`(SELECT m.target_id FROM move_row_map AS m WHERE m.move_id = ${moveId} AND m.tbl = ${other} AND m.source_id = ${value})`;
}

/** `ON CONFLICT (key) DO UPDATE SET …`: the target's copy takes the source's every column. */
function upsertTail(moved: MovedTable, columns: readonly string[]): SQL {
  const rest = columns.filter((column) => !moved.key.includes(column));
  if (rest.length === 0) return sql.raw(`ON CONFLICT (${moved.key.map((c) => `"${c}"`).join(", ")}) DO NOTHING`);
  const sets = rest.map((column) => `"${column}" = excluded."${column}"`).join(", ");
  return sql.raw(`ON CONFLICT (${moved.key.map((c) => `"${c}"`).join(", ")}) DO UPDATE SET ${sets}`);
}

/**
 * Statements writing source rows on the target, guarded: a table with a natural key is upserted by it; an own-id table's
 * rows already mapped are upserted at their mapped id, the others appended in source order (new ids, contiguous in one
 * statement) and mapped by `last_insert_rowid()` (the map is WITHOUT ROWID, so filling it does not move it).
 */
export function writeRows({
  moved,
  rows,
  mapped,
  guard,
}: {
  moved: MovedTable;
  rows: readonly Row[];
  mapped: ReadonlyMap<number, number>;
  guard: Guard;
}): SQL[] {
  const first = rows[0];
  if (!first) return [];
  const columns = Object.keys(first);
  if (!moved.ownId) return writeMapped({ moved, columns, rows, guard });
  const id = ownIdColumn(moved);
  const known = rows.filter((row) => mapped.has(Number(row[id]))).map((row) => ({ ...row, [id]: mapped.get(Number(row[id])) }));
  const fresh = rows.filter((row) => !mapped.has(Number(row[id])));
  return [...writeMapped({ moved, columns, rows: known, guard }), ...appendFresh({ moved, columns, rows: fresh, guard })];
}

/** Upserts rows by the table's key, at the ids they carry (a natural key, or an own id already mapped); guarded. */
function writeMapped({
  moved,
  columns,
  rows,
  guard,
}: {
  moved: MovedTable;
  columns: readonly string[];
  rows: readonly Row[];
  guard: Guard;
}): SQL[] {
  if (rows.length === 0) return [];
  const values = sql.join(
    columns.map((column) => columnValue(moved, guard.moveId, column)),
    sql.raw(", "),
  );
  return [
    sql`INSERT INTO ${table(moved)} (${columnList(columns)}) SELECT ${values} FROM json_each(${JSON.stringify(rows)}) WHERE ${guarded(guard)} ${upsertTail(moved, columns)}`,
  ];
}

function appendFresh({
  moved,
  columns,
  rows,
  guard,
}: {
  moved: MovedTable;
  columns: readonly string[];
  rows: readonly Row[];
  guard: Guard;
}): SQL[] {
  if (rows.length === 0) return [];
  const id = ownIdColumn(moved);
  const rest = columns.filter((column) => column !== id);
  const json = JSON.stringify(rows);
  const values = sql.raw(rest.map((column) => `value ->> '$.${column}'`).join(", "));
  return [
    sql`INSERT INTO ${table(moved)} (${columnList(rest)}) SELECT ${values} FROM json_each(${json}) WHERE ${guarded(guard)} ORDER BY key`,
    sql`INSERT INTO move_row_map (move_id, tbl, source_id, target_id)
      SELECT ${guard.moveId}, ${moved.name}, value ->> '$.${sql.raw(id)}', last_insert_rowid() - ${rows.length - 1} + key
      FROM json_each(${json}) WHERE ${guarded(guard)}`,
  ];
}

/** Statements deleting on the target the rows whose source rows are gone (keys: the change log's arrays), guarded. */
export function deleteRows({ moved, keys, guard }: { moved: MovedTable; keys: readonly unknown[][]; guard: Guard }): SQL[] {
  if (keys.length === 0) return [];
  const json = JSON.stringify(keys);
  if (!moved.ownId) {
    const remapped = keysIn(moved, json, (column, value) => columnValue(moved, guard.moveId, column, value));
    return [sql`DELETE FROM ${table(moved)} WHERE ${remapped} AND ${guarded(guard)}`];
  }
  const sources = sql`SELECT value ->> 0 FROM json_each(${json})`;
  return [
    sql`DELETE FROM ${table(moved)} WHERE ${sql.raw(`"${ownIdColumn(moved)}"`)} IN (SELECT target_id FROM move_row_map
      WHERE move_id = ${guard.moveId} AND tbl = ${moved.name} AND source_id IN (${sources})) AND ${guarded(guard)}`,
    sql`DELETE FROM move_row_map WHERE move_id = ${guard.moveId} AND tbl = ${moved.name} AND source_id IN (${sources}) AND ${guarded(guard)}`,
  ];
}

/** The target ids already mapped for these source ids of an own-id table. */
export async function mappedIds({
  db,
  moveId,
  moved,
  sourceIds,
}: {
  db: Database;
  moveId: string;
  moved: MovedTable;
  sourceIds: readonly number[];
}) {
  if (!moved.ownId || sourceIds.length === 0) return new Map<number, number>();
  const rows = await readRows(
    db,
    sql`SELECT source_id, target_id FROM move_row_map WHERE move_id = ${moveId} AND tbl = ${moved.name}
      AND source_id IN (SELECT value FROM json_each(${JSON.stringify(sourceIds)}))`,
  );
  return new Map(rows.map((row) => [Number(row.source_id), Number(row.target_id)]));
}

/** How many of the merchant's rows `moved` holds on `db`. */
export async function countRows({ db, moved, merchantId }: { db: Database; moved: MovedTable; merchantId: string }): Promise<number> {
  const [row] = await readRows(db, sql`SELECT count(*) AS n FROM ${table(moved)} AS x WHERE ${ownedRows(moved, merchantId)}`);
  return Number(row?.n ?? 0);
}

/** Deletes one page of the merchant's rows of `moved` on `db` (the cleaning of the source); answers how many went. */
export async function deletePage({
  db,
  moved,
  merchantId,
  limit,
}: {
  db: Database;
  moved: MovedTable;
  merchantId: string;
  limit: number;
}): Promise<number> {
  const [result] = await runBatch(db.$client, [
    sql`DELETE FROM ${table(moved)} WHERE (${columnList(moved.key)}) IN (SELECT ${columnList(moved.key, "x.")} FROM ${table(moved)} AS x WHERE ${ownedRows(moved, merchantId)} LIMIT ${limit})`,
  ]);
  return result?.meta.changes ?? 0;
}

/**
 * One page of the merchant's rows of every moved table deleted on `db`, children first (MOVED_TABLES backwards); answers
 * how many went. The `merchants` row goes only in a pass that found no other row left: the other tables' foreign keys
 * name it, so while one of them still has more than a page its delete would fail, and with it the whole step.
 */
export async function deletePass({ db, merchantId, limit }: { db: Database; merchantId: string; limit: number }): Promise<number> {
  let deleted = 0;
  for (const moved of [...MOVED_TABLES].reverse()) {
    if (moved.name === "merchants" && deleted > 0) continue;
    deleted += await deletePage({ db, moved, merchantId, limit });
  }
  return deleted;
}
