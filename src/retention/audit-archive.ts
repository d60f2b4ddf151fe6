import { and, desc, eq } from "drizzle-orm";
import { type AuditPosition, auditCursor, auditRowsBefore, presentAuditEntry } from "../audit/audit";
import type { Database } from "../db/client";
import { afterRow } from "../db/keyset";
import type { AdminAuditRow } from "../db/rows";
import { archivePages } from "../db/schema";
import { newestFirst } from "../db/shards";
import { decodePageCursor, encodePageCursor, keysetPage } from "../lib/cursor";
import type { ArchiveBucket, PageRecord } from "./archive-format";
import { mergeHistory } from "./history";
import { readPage } from "./pages";

/** Archived audit pages read at most per request: a page of the list then holds at most 2 objects' worth of entries. */
export const AUDIT_PAGES_PER_READ = 2;

const auditRow = ({ record: _record, ...row }: Extract<PageRecord, { record: "audit" }>): AdminAuditRow => row;
const position = (row: AdminAuditRow): AuditPosition => ({ a: row.at, i: row.id });
const olderThan = (after: AuditPosition | undefined) => (row: AdminAuditRow) =>
  after === undefined || newestFirst([after.a, after.i], [row.at, row.id]) < 0;

/**
 * The admin audit, newest first, in keyset pages of `limit` with a cursor: D1's entries, then, once they run out, the
 * entries archived to R2 (pages.ts), which are all older (the audit is archived oldest first, and a page R2 refused
 * holds back every newer one). At most AUDIT_PAGES_PER_READ archive objects are read per
 * request; a page they cannot fill is shorter than `limit` and still has a `next_cursor` while older objects remain.
 */
export async function listAdminAudit({
  db,
  bucket,
  cursor,
  limit = 100,
}: {
  db: Database;
  bucket: Pick<ArchiveBucket, "get">;
  cursor?: string;
  limit?: number;
}) {
  const after = cursor === undefined ? undefined : decodePageCursor(cursor, auditCursor);
  const [live, pages] = await db.batch([
    auditRowsBefore({ db, after, limit: limit + 1 }),
    db
      .select({ key: archivePages.key })
      .from(archivePages)
      .where(
        and(
          eq(archivePages.kind, "audit"),
          eq(archivePages.scope, ""),
          eq(archivePages.status, "stored"),
          after && afterRow("desc", [archivePages.firstAt, archivePages.firstId], [after.a, after.i]),
        ),
      )
      .orderBy(desc(archivePages.firstAt), desc(archivePages.firstId))
      .limit(AUDIT_PAGES_PER_READ + 1),
  ]);
  const read = live.length > limit ? [] : pages.slice(0, AUDIT_PAGES_PER_READ);
  const objects = await Promise.all(read.map(({ key }) => readPage({ bucket, key })));
  const archived = objects
    .flat()
    .flatMap((record): AdminAuditRow[] => (record.record === "audit" ? [auditRow(record)] : []))
    .filter(olderThan(after));
  const rows = mergeHistory(archived, live, (a, b) => newestFirst([a.at, a.id], [b.at, b.id]));
  const short = rows.length <= limit && pages.length > read.length;
  const last = rows.at(-1);
  if (short && last) return { entries: rows.map(presentAuditEntry), next_cursor: encodePageCursor(position(last)) };
  const { page, nextCursor } = keysetPage(rows, limit, position);
  return { entries: page.map(presentAuditEntry), next_cursor: nextCursor };
}
