import { sql } from "drizzle-orm";
import { runBatch } from "../db/bulk";
import type { Database } from "../db/client";
import { countRows, deleteRows, type Guard, keyOf, mappedIds, type Row, readByKeys, readPage, readRows, writeRows } from "./rows";
import { MOVED_TABLES, type MovedTable, movedTable, ownIdColumn } from "./tables";

/** Rows per page (a table may set fewer, `MovedTable.page`): one source read and one target D1 batch each. */
export const MOVE_PAGE = 500;
/**
 * Keys a walked table's page reads at most (src/moves/tables.ts `walk`), whatever their merchant: a merchant with 1,000
 * events of a shard's 10 million no longer has one statement read millions of keys while the shard's other merchants wait.
 */
export const SCAN_KEYS = 5_000;
/** The change log's own line in `move_progress`. */
const CHANGES = "~changes";

/** Both ends of a move. */
export interface MoveEnds {
  moveId: string;
  merchantId: string;
  source: Database;
  target: Database;
  /** Keys a walked table's page reads (SCAN_KEYS unless a test lowers it to see many pages in a small shard). */
  scanKeys?: number;
}

/** Rows per copy page and per catch-up write of a table. */
const pageOf = (moved: MovedTable): number => moved.page ?? MOVE_PAGE;

interface Progress {
  tbl: string;
  cursor: string | null;
  rows: number;
  done: boolean;
}

async function progressOf({ target, moveId }: MoveEnds): Promise<Map<string, Progress>> {
  const rows = await readRows(target, sql`SELECT tbl, cursor, rows, done FROM move_progress WHERE move_id = ${moveId}`);
  return new Map(
    rows.map((row) => [
      String(row.tbl),
      {
        tbl: String(row.tbl),
        cursor: row.cursor === null ? null : String(row.cursor),
        rows: Number(row.rows),
        done: Number(row.done) === 1,
      },
    ]),
  );
}

/**
 * The target batch of one page: the progress line moves from the cursor the page started at (compare-and-set, taking
 * this run's token), then the page's writes, each guarded by that token: of two runs of one page, one writes it.
 */
async function commitPage({
  ends,
  tbl,
  from,
  to,
  rows,
  done,
  writes,
}: {
  ends: MoveEnds;
  tbl: string;
  from: string | null;
  to: string | null;
  rows: number;
  done: boolean;
  writes: (guard: Guard) => ReturnType<typeof writeRows>;
}): Promise<boolean> {
  const guard: Guard = { moveId: ends.moveId, tbl, token: crypto.randomUUID() };
  const was = from === null ? sql`cursor IS NULL` : sql`cursor = ${from}`;
  const results = await runBatch(ends.target.$client, [
    sql`INSERT INTO move_progress (move_id, tbl) VALUES (${ends.moveId}, ${tbl}) ON CONFLICT DO NOTHING`,
    sql`UPDATE move_progress SET cursor = ${to}, rows = rows + ${rows}, done = ${done ? 1 : 0}, token = ${guard.token}
      WHERE move_id = ${ends.moveId} AND tbl = ${tbl} AND done = 0 AND ${was}`,
    ...writes(guard),
  ]);
  return (results[1]?.meta.changes ?? 0) > 0;
}

/**
 * Where the next page starts and whether the table is copied. A full page stops at its last row; a shorter one at the
 * last key its scan read (an empty page of a walked table is progress, not the end), or, its scan having reached the
 * table's end (or the table not walked: the page read every row left), the table is copied. The copy's loop ends there:
 * each page moves the cursor forward by at least one key.
 */
function nextCursor({ moved, rows, end, limit }: { moved: MovedTable; rows: readonly Row[]; end: unknown[] | null; limit: number }) {
  const last = rows.at(-1);
  if (last && rows.length >= limit) return { to: keyOf(moved, last), done: false };
  if (end) return { to: end, done: false };
  return { to: last ? keyOf(moved, last) : null, done: true };
}

/** Copies the next page of the first table not yet copied; answers the rows it copied, or null when every table is. */
export async function copyNextPage(ends: MoveEnds): Promise<number | null> {
  const progress = await progressOf(ends);
  const moved = MOVED_TABLES.find((table) => !progress.get(table.name)?.done);
  if (!moved) return null;
  const at = progress.get(moved.name)?.cursor ?? null;
  const limit = pageOf(moved);
  const { rows, end } = await readPage({
    db: ends.source,
    moved,
    merchantId: ends.merchantId,
    after: at === null ? null : (JSON.parse(at) as unknown[]),
    limit,
    scanKeys: ends.scanKeys ?? SCAN_KEYS,
  });
  const { to, done } = nextCursor({ moved, rows, end, limit });
  const won = await commitPage({
    ends,
    tbl: moved.name,
    from: at,
    to: to ? JSON.stringify(to) : at,
    rows: rows.length,
    done,
    writes: (guard) => writeRows({ moved, rows, mapped: new Map(), guard }),
  });
  return won ? rows.length : 0;
}

/** The writes that bring the target's copy of one table's changed keys level with the source. */
async function catchUpTable({ ends, moved, keys, guard }: { ends: MoveEnds; moved: MovedTable; keys: unknown[][]; guard: Guard }) {
  const present = await readByKeys({ db: ends.source, moved, keys });
  const seen = new Set(present.map((row: Row) => JSON.stringify(keyOf(moved, row))));
  const gone = keys.filter((key) => !seen.has(JSON.stringify(key)));
  const sourceIds = moved.ownId ? present.map((row) => Number(row[ownIdColumn(moved)])) : [];
  const mapped = await mappedIds({ db: ends.target, moveId: ends.moveId, moved, sourceIds });
  // Written a table's page at a time: each statement carries its rows as one JSON value (wide rows, smaller pages).
  const writes = [];
  for (let i = 0; i < present.length; i += pageOf(moved))
    writes.push(...writeRows({ moved, rows: present.slice(i, i + pageOf(moved)), mapped, guard }));
  return [...deleteRows({ moved, keys: gone, guard }), ...writes];
}

/**
 * Applies the next page of the source's change log to the target (rows written since tracking began: each re-read on
 * the source and upserted, or deleted when gone), in the tables' copy order; answers how many changes it covered.
 */
export async function applyNextChanges(ends: MoveEnds): Promise<number> {
  const at = (await progressOf(ends)).get(CHANGES)?.cursor ?? null;
  const changes = await readRows(
    ends.source,
    sql`SELECT seq, tbl, key FROM move_changes WHERE merchant_id = ${ends.merchantId} AND seq > ${Number(at ?? 0)} ORDER BY seq LIMIT ${MOVE_PAGE}`,
  );
  const last = changes.at(-1);
  if (!last) return 0;
  const keysOf = new Map<string, Map<string, unknown[]>>();
  for (const change of changes) {
    const keys = keysOf.get(String(change.tbl)) ?? new Map<string, unknown[]>();
    keys.set(String(change.key), JSON.parse(String(change.key)) as unknown[]);
    keysOf.set(String(change.tbl), keys);
  }
  const guard: Guard = { moveId: ends.moveId, tbl: CHANGES, token: "" };
  const statements = async (g: Guard) => {
    const all = [];
    for (const moved of MOVED_TABLES) {
      const keys = keysOf.get(moved.name);
      if (keys && movedTable(moved.name)) all.push(...(await catchUpTable({ ends, moved, keys: [...keys.values()], guard: g })));
    }
    return all;
  };
  // The statements are built before the batch (they read the source); the token is fixed first so they can carry it.
  guard.token = crypto.randomUUID();
  const writes = await statements(guard);
  const results = await runBatch(ends.target.$client, [
    sql`INSERT INTO move_progress (move_id, tbl) VALUES (${ends.moveId}, ${CHANGES}) ON CONFLICT DO NOTHING`,
    sql`UPDATE move_progress SET cursor = ${String(last.seq)}, rows = rows + ${changes.length}, token = ${guard.token}
      WHERE move_id = ${ends.moveId} AND tbl = ${CHANGES} AND ${at === null ? sql`cursor IS NULL` : sql`cursor = ${at}`}`,
    ...writes,
  ]);
  return (results[1]?.meta.changes ?? 0) > 0 ? changes.length : 0;
}

/** Each table whose count of the merchant's rows differs between source and target, with both counts. */
export async function countDifferences({ merchantId, source, target }: MoveEnds): Promise<string[]> {
  const counts = await Promise.all(
    MOVED_TABLES.map(async (moved) => ({
      name: moved.name,
      source: await countRows({ db: source, moved, merchantId }),
      target: await countRows({ db: target, moved, merchantId }),
    })),
  );
  return counts.filter((c) => c.source !== c.target).map((c) => `${c.name} ${c.source}≠${c.target}`);
}
