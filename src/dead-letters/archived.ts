import { and, desc, eq } from "drizzle-orm";
import { z } from "zod";
import { afterRow } from "../db/keyset";
import type { DeadLetterRow } from "../db/rows";
import { archivePages } from "../db/schema";
import { databaseFor, mergedRows, newestFirst, shardDatabases } from "../db/shards";
import type { AppEnv } from "../env";
import { decodePageCursor, encodePageCursor } from "../lib/cursor";
import type { ArchiveBucket, PageRecord } from "../retention/archive-format";
import { readPage } from "../retention/pages";
import { presentDeadLetter } from "./redrive";

/** Where an archived list stopped: the first letter of the last page object read (other field names than D1's cursor). */
const archivedCursor = z.strictObject({ pa: z.string().min(1).max(64), pi: z.string().min(1).max(200) });

const letterOf = ({ record: _record, ...row }: Extract<PageRecord, { record: "dead_letter" }>): DeadLetterRow => row;

/**
 * Dead letters archived to R2 (retention/pages.ts), redriven or not, of every shard or of one merchant: one page object
 * per response (at most ROWS_PER_PAGE letters, newest first), objects newest first by their first letter; one ledger
 * read per shard and one R2 read per request.
 */
export async function listArchivedDeadLetters({
  env,
  bucket,
  merchantId,
  cursor,
}: {
  env: AppEnv;
  bucket: Pick<ArchiveBucket, "get">;
  merchantId?: string;
  cursor?: string;
}) {
  const after = cursor === undefined ? undefined : decodePageCursor(cursor, archivedCursor);
  const [page, next] = await mergedRows(
    merchantId ? [await databaseFor(env, merchantId)] : shardDatabases(env),
    (db) =>
      db
        .select({ key: archivePages.key, firstAt: archivePages.firstAt, firstId: archivePages.firstId })
        .from(archivePages)
        .where(
          and(
            eq(archivePages.kind, "dead_letters"),
            merchantId === undefined ? undefined : eq(archivePages.scope, merchantId),
            eq(archivePages.status, "stored"),
            after && afterRow("desc", [archivePages.firstAt, archivePages.firstId], [after.pa, after.pi]),
          ),
        )
        .orderBy(desc(archivePages.firstAt), desc(archivePages.firstId))
        .limit(2),
    (a, b) => newestFirst([a.firstAt, a.firstId], [b.firstAt, b.firstId]),
  );
  if (!page) return { dead_letters: [], next_cursor: null };
  const letters = (await readPage({ bucket, key: page.key }))
    .flatMap((record) => (record.record === "dead_letter" ? [letterOf(record)] : []))
    .sort((a, b) => newestFirst([a.createdAt, a.id], [b.createdAt, b.id]));
  return {
    dead_letters: letters.map((letter) => ({ ...presentDeadLetter(letter), redriven_at: letter.redrivenAt })),
    next_cursor: next ? encodePageCursor({ pa: page.firstAt, pi: page.firstId }) : null,
  };
}
