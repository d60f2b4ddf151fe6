import { and, asc, eq, isNotNull, isNull, lt, notInArray, or, type SQL, sql } from "drizzle-orm";
import { inList, runBatch } from "../db/bulk";
import type { Database } from "../db/client";
import { safeErrorMessage } from "../db/errors";
import { servedHere } from "../db/fence";
import type { AdminAuditRow, ArchivePageRow, DeadLetterRow } from "../db/rows";
import { type ArchivePageKind, adminAudit, archivePages, deadLetters } from "../db/schema";
import { sha256Hex } from "../lib/encoding";
import { log } from "../lib/log";
import { type ArchiveBucket, decodePages, encodeArchive, type PageRecord } from "./archive-format";

/** Rows one page object holds at most: one page of the admin lists that read them back. */
export const ROWS_PER_PAGE = 100;
/** Page objects one run stores at most, per kind and database; a larger backlog goes over the next runs. */
export const PAGES_PER_RUN = 10;
/** Admin audit entries stay in D1 this long (a year of questions answered by one query), then move to R2. */
export const AUDIT_KEPT_DAYS = 365;

/** A row's place in its table's (time, id) order. */
interface Position {
  at: string;
  id: string;
}

/** What the page archive needs to know of one table. */
interface PageTable<Row> {
  kind: ArchivePageKind;
  /** The oldest rows before `cutoff` (at most ROWS_PER_PAGE, oldest first), all of one scope, none of `skipped`'s. */
  nextRows(db: Database, cutoff: string, skipped: readonly string[]): Promise<Row[]>;
  scopeOf(row: Row): string;
  positionOf(row: Row): Position;
  record(row: Row): PageRecord;
  /** The R2 key's prefix for a scope; the key goes on with the first row's UTC day, time and id. */
  prefix(scope: string): string;
  rowsByIds(db: Database, ids: string[]): Promise<Row[]>;
  /** Deletes the rows whose ids `ids` (a subquery) lists. */
  deleteByIds(ids: SQL): SQL;
}

/** Webhook, fulfilment and batch dead letters on their shard, archived per merchant (scope '' for letters naming none). */
export const deadLetterPages: PageTable<DeadLetterRow> = {
  kind: "dead_letters",
  async nextRows(db, cutoff, skipped) {
    const unskipped = and(
      skipped.includes("") ? isNotNull(deadLetters.merchantId) : undefined,
      or(isNull(deadLetters.merchantId), notInArray(deadLetters.merchantId, [...skipped])),
    );
    // The oldest letter's merchant (by `dead_letters_created`), then its oldest letters (by `dead_letters_merchant`); a
    // merchant not served here (a move's copy arriving, or moved off) is its other shard's (a letter naming none: here).
    const oldest = await db
      .select({ merchantId: deadLetters.merchantId })
      .from(deadLetters)
      .where(and(lt(deadLetters.createdAt, cutoff), unskipped, servedHere(deadLetters.merchantId)))
      .orderBy(asc(deadLetters.createdAt), asc(deadLetters.id))
      .get();
    if (!oldest) return [];
    const sameMerchant = oldest.merchantId === null ? isNull(deadLetters.merchantId) : eq(deadLetters.merchantId, oldest.merchantId);
    return db
      .select()
      .from(deadLetters)
      .where(and(sameMerchant, lt(deadLetters.createdAt, cutoff)))
      .orderBy(asc(deadLetters.createdAt), asc(deadLetters.id))
      .limit(ROWS_PER_PAGE);
  },
  scopeOf: (row) => row.merchantId ?? "",
  positionOf: (row) => ({ at: row.createdAt, id: row.id }),
  record: (row) => ({ record: "dead_letter", ...row }),
  prefix: (scope) => (scope === "" ? "dead-letters/unattributed" : `dead-letters/merchant/${encodeURIComponent(scope)}`),
  rowsByIds: (db, ids) => db.select().from(deadLetters).where(inList(deadLetters.id, ids)),
  deleteByIds: (ids) => sql`DELETE FROM ${deadLetters} WHERE ${deadLetters.id} IN ${ids}`,
};

/** The admin audit on `DB`, one sequence (scope ''). */
export const auditPages: PageTable<AdminAuditRow> = {
  kind: "audit",
  nextRows: (db, cutoff) =>
    db.select().from(adminAudit).where(lt(adminAudit.at, cutoff)).orderBy(asc(adminAudit.at), asc(adminAudit.id)).limit(ROWS_PER_PAGE),
  scopeOf: () => "",
  positionOf: (row) => ({ at: row.at, id: row.id }),
  record: (row) => ({ record: "audit", ...row }),
  prefix: () => "audit",
  rowsByIds: (db, ids) => db.select().from(adminAudit).where(inList(adminAudit.id, ids)),
  deleteByIds: (ids) => sql`DELETE FROM ${adminAudit} WHERE ${adminAudit.id} IN ${ids}`,
};

/** The R2 key of a page: its scope's prefix, the UTC day of its first row, then that row's time and id. */
export function pageKey(prefix: string, first: Position): string {
  return `${prefix}/${first.at.slice(0, 10)}/${first.at.slice(11).replace(/[:.]/g, "")}-${encodeURIComponent(first.id)}.ndjson.gz`;
}

/** What one step did. */
export type PageStep = { kind: "stored"; key: string; scope: string; rows: number } | { kind: "idle" } | { kind: "busy" };

/** What a step works on: a page of the table, with the scopes (merchants) it must pass over. */
interface PageInput<Row> {
  db: Database;
  table: PageTable<Row>;
  /** ISO 8601: rows written before it are archived. */
  cutoff: string;
  /** Scopes whose page failed in this run: passed over, so one merchant's failure does not stop the others. */
  skipped?: readonly string[];
  now: number;
}

/**
 * Step 1 of `archivePage`: the scope's page left `writing` by a run that stopped, else a claim of the next page (the
 * oldest rows before the cutoff, of one scope); `idle` with nothing to archive, `busy` when another run claimed it first.
 */
export async function nextPage<Row>({ db, table, cutoff, skipped = [], now }: PageInput<Row>): Promise<ArchivePageRow | "idle" | "busy"> {
  const open = await db
    .select()
    .from(archivePages)
    .where(
      and(
        eq(archivePages.kind, table.kind),
        eq(archivePages.status, "writing"),
        notInArray(archivePages.scope, [...skipped]),
        // A page a move copied here is its source's to finish (a scope naming no merchant is always served).
        servedHere(archivePages.scope),
      ),
    )
    .get();
  if (open) return open;
  const rows = await table.nextRows(db, cutoff, skipped);
  const first = rows[0];
  const last = rows.at(-1);
  if (!first || !last) return "idle";
  const [from, through] = [table.positionOf(first), table.positionOf(last)];
  const scope = table.scopeOf(first);
  const [claimed] = await db
    .insert(archivePages)
    .values({
      kind: table.kind,
      scope,
      key: pageKey(table.prefix(scope), from),
      status: "writing",
      ids: rows.map((row) => table.positionOf(row).id),
      firstAt: from.at,
      firstId: from.id,
      lastAt: through.at,
      lastId: through.id,
      entries: rows.length,
      createdAt: new Date(now).toISOString(),
    })
    .onConflictDoNothing()
    .returning();
  return claimed ?? "busy";
}

/**
 * One step of a table's page archive, as `archiveMerchantHistory` steps a history:
 * 1. claim (`nextPage`): the page's row, with the exact ids it holds, is inserted only while the scope has no other
 *    `writing` page (a partial unique index), so one page at a time takes a merchant's rows;
 * 2. write: the rows named are read back, put to R2 under the page's key (from its first row: a rewrite lands on the same
 *    object) and checked with `head` (size and SHA-256); rows that left D1 otherwise are simply not in it;
 * 3. finish, one D1 batch: the named rows deleted and the page marked `stored`, both only while it is still `writing`.
 * A run that stops between 1 and 3 leaves the page `writing`; the next one starts over at 2 with the same ids and key.
 */
export async function archivePage<Row>({ bucket, ...input }: PageInput<Row> & { bucket: ArchiveBucket }): Promise<PageStep> {
  const page = await nextPage(input);
  if (typeof page === "string") return { kind: page };
  return writePage({ ...input, bucket, page });
}

/** Steps 2 and 3 of `archivePage` for a claimed page. */
async function writePage<Row>({
  db,
  bucket,
  table,
  page,
  now,
}: {
  db: Database;
  bucket: ArchiveBucket;
  table: PageTable<Row>;
  page: ArchivePageRow;
  now: number;
}): Promise<PageStep> {
  const rows = (await table.rowsByIds(db, page.ids ?? [])).sort((a, b) => comparePositions(table.positionOf(a), table.positionOf(b)));
  if (rows.length === 0) {
    const current = await db.select({ status: archivePages.status }).from(archivePages).where(eq(archivePages.id, page.id)).get();
    // An overlapping run finished it between our reads: its rows left D1 in the same batch that marked it stored.
    if (current?.status === "stored") return { kind: "busy" };
  }
  const body = await encodeArchive(rows.map(table.record));
  const sha256 = await sha256Hex(body);
  await bucket.put(page.key, body, {
    sha256,
    httpMetadata: { contentType: "application/gzip" },
    customMetadata: { kind: page.kind, scope: page.scope, records: String(rows.length), sha256 },
  });
  // Verified before anything leaves D1: an object that does not read back as written keeps its rows where they are.
  const stored = await bucket.head(page.key);
  if (!stored || stored.size !== body.byteLength || stored.customMetadata?.sha256 !== sha256) {
    throw new Error(`archive page ${page.key} did not read back as written; its rows stay in D1`);
  }
  const isWriting = sql`${archivePages.id} = ${page.id} AND ${archivePages.status} = 'writing'`;
  const [, marked] = await runBatch(db.$client, [
    table.deleteByIds(sql`(SELECT j.value FROM ${archivePages}, json_each(${archivePages.ids}) AS j WHERE ${isWriting})`),
    sql`UPDATE ${archivePages} SET status = 'stored', ids = NULL, entries = ${rows.length}, bytes = ${body.byteLength},
      stored_at = ${new Date(now).toISOString()} WHERE ${isWriting}`,
  ]);
  // An overlapping run finished the page first: same key, same rows; this run deleted nothing and stored nothing new.
  if (marked?.meta.changes === 0) return { kind: "busy" };
  log("info", "retention.page_stored", { kind: page.kind, scope: page.scope, key: page.key, rows: rows.length, bytes: body.byteLength });
  return { kind: "stored", key: page.key, scope: page.scope, rows: rows.length };
}

const comparePositions = (a: Position, b: Position) => (a.at === b.at ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : a.at < b.at ? -1 : 1);

/** What one run archived of a table, and the scopes whose page failed (their rows stay in D1 for the next run). */
export interface PageRun {
  pagesStored: number;
  rowsArchived: number;
  failures: { scope: string; error: unknown }[];
}

/**
 * One cron run of a table's page archive: steps until nothing is left before the cutoff, another run holds the claim, or
 * PAGES_PER_RUN steps were taken (the run's bound). A failed write (R2 refusing a put) is logged with its scope (the
 * merchant) and leaves its rows in D1 and its page `writing` for the next run; the rest of the run passes that scope over.
 */
export async function archivePageRun<Row>({
  bucket,
  ...input
}: Omit<PageInput<Row>, "skipped"> & { bucket: ArchiveBucket }): Promise<PageRun> {
  const run: PageRun = { pagesStored: 0, rowsArchived: 0, failures: [] };
  for (let steps = 0; steps < PAGES_PER_RUN; steps++) {
    const page = await nextPage({ ...input, skipped: run.failures.map((failure) => failure.scope) });
    if (typeof page === "string") break;
    try {
      const step = await writePage({ ...input, bucket, page });
      if (step.kind !== "stored") break;
      run.pagesStored += 1;
      run.rowsArchived += step.rows;
    } catch (error) {
      const merchantId = page.scope === "" ? null : page.scope;
      log("error", "retention.page_failed", { kind: page.kind, merchant_id: merchantId, key: page.key, error: safeErrorMessage(error) });
      run.failures.push({ scope: page.scope, error });
    }
  }
  return run;
}

/** A page object's records; its rows left D1 only after it was written and read back, so a missing object is a loss, never "none". */
export async function readPage({ bucket, key }: { bucket: Pick<ArchiveBucket, "get">; key: string }): Promise<PageRecord[]> {
  const object = await bucket.get(key);
  if (!object) {
    log("error", "retention.archive_object_missing", { key });
    throw new Error(`archive page ${key} is missing`);
  }
  return decodePages(object.body);
}
