import { and, asc, eq, exists, lt, or, type SQL, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/sqlite-core";
import { inList, runBatch } from "../db/bulk";
import type { Database } from "../db/client";
import { safeErrorMessage } from "../db/errors";
import { servedHere } from "../db/fence";
import { afterRow } from "../db/keyset";
import type { ArchiveObjectRow, TransactionRow } from "../db/rows";
import { type ArchiveManifest, archiveObjects, merchants, retentionCursors, transactions } from "../db/schema";
import { sha256Hex } from "../lib/encoding";
import { log } from "../lib/log";
import { IN_FLIGHT_STATUSES } from "../smart-router/status";
import { type ArchiveBucket, encodeArchive } from "./archive-format";
import { archiveKey, archiveName } from "./history";
import { deleteManifestRows, historyIds, readManifestRows } from "./history-rows";

/** Transactions one object holds at most, and the records (events, operations, timeline rows) past which it takes no further one. */
export const TRANSACTIONS_PER_OBJECT = 100;
export const RECORDS_PER_OBJECT = 1_000;
/** The cap of one cron run: objects stored, merchants given a turn (least recently served first), steps per merchant. */
export const OBJECTS_PER_RUN = 10;
export const MERCHANTS_PER_RUN = 50;

/**
 * Records in flight are refreshed by reconciliation, whose reads would put their operations back at once: their operations
 * stay in D1. The rest of their history (inbox rows, status entries, timeline rows) is immutable and goes as a settled one's.
 */
const IN_FLIGHT: ReadonlySet<string> = new Set(IN_FLIGHT_STATUSES);

/** Where a merchant's walk stands: a transaction's place in `transactions_merchant_updated`. */
type Position = Pick<TransactionRow, "updatedAt" | "id">;

/** What one step did for a merchant. */
export type ArchiveStep =
  | { kind: "stored"; key: string; transactions: number; records: number }
  /** The cursor moved past transactions with nothing to archive (history archived already, or only operations in flight). */
  | { kind: "passed"; transactions: number }
  /** Nothing older than the cutoff after the cursor. */
  | { kind: "idle" }
  /** Another run holds the merchant's claim. */
  | { kind: "busy" };

/**
 * One step of a merchant's archive walk: finishes the merchant's object left `writing` by a run that stopped, else
 * claims the next one and writes it. The walk goes through the merchant's transactions last changed before `cutoff`, in
 * `transactions_merchant_updated` order from the merchant's cursor; an object takes one UTC day's of them (at most
 * TRANSACTIONS_PER_OBJECT, and no further one once RECORDS_PER_OBJECT records are in), leaving the operations of records
 * in flight in D1 (IN_FLIGHT). A later change moves a record's `updated_at` past the cursor, so the walk meets it again
 * and takes what it gained since (and, once it settled, its operations).
 *
 * Why nothing is lost or doubled, whenever a run dies or two overlap:
 * 1. claim: the object's row, with the manifest of the exact event and operation ids it will hold, is inserted only if
 *    the cursor still stands where the ids were read and the merchant has no other `writing` object (a partial unique
 *    index), so one object at a time covers a range;
 * 2. write: the rows named by the manifest are read back (one D1 batch: all or none of them, since only step 4 deletes
 *    them, all at once), put to R2 under the object's key, and read back with `head` (size and SHA-256);
 * 3. a run that stops between 1 and 4 leaves the object `writing`; the next run (or an overlapping one) starts over at 2
 *    with the same manifest and key, so it rewrites the same records: a second put replaces identical content;
 * 4. finish, one D1 batch: the object's name added to its records' `archive_names` (only if absent) in the UPDATE that
 *    strips their histories, the deletion of exactly the manifest's ids, the cursor moved (compare-and-set on where it
 *    stood) and the object marked `stored`, each only while it is still `writing`, so a late second finish changes
 *    nothing and a record never names an object that is not stored. Rows that arrived after the claim are not in the manifest and stay in D1.
 */
export async function archiveMerchantHistory({
  db,
  bucket,
  merchantId,
  cutoff,
  now,
}: {
  db: Database;
  bucket: ArchiveBucket;
  merchantId: string;
  /** ISO 8601: transactions last changed before it are archived. */
  cutoff: string;
  now: number;
}): Promise<ArchiveStep> {
  const open = await db
    .select()
    .from(archiveObjects)
    .where(and(eq(archiveObjects.merchantId, merchantId), eq(archiveObjects.status, "writing")))
    .get();
  if (open) return writeObject({ db, bucket, object: open, now });

  await db.insert(retentionCursors).values({ merchantId }).onConflictDoNothing();
  const cursor = await db.select().from(retentionCursors).where(eq(retentionCursors.merchantId, merchantId)).get();
  const from: Position | null =
    cursor?.archivedThroughUpdatedAt && cursor.archivedThroughId
      ? { updatedAt: cursor.archivedThroughUpdatedAt, id: cursor.archivedThroughId }
      : null;
  const candidates = await archiveCandidates({ db, merchantId, cutoff, from });
  const first = candidates[0];
  if (!first) return { kind: "idle" };
  const day = first.updatedAt.slice(0, 10);
  const sameDay = candidates.filter((candidate) => candidate.updatedAt.startsWith(day));
  const idsOf = (list: typeof sameDay) => list.map((candidate) => candidate.id);
  const settled = idsOf(sameDay.filter((candidate) => !IN_FLIGHT.has(candidate.status)));
  const history = await historyIds({ db, merchantId, transactionIds: idsOf(sameDay), operationsOf: settled });

  // A transaction's history goes whole into one object; the object stops taking transactions once full.
  let taken = 0;
  let records = 0;
  for (const candidate of sameDay) {
    const count = history.recordsOf(candidate.id);
    if (taken > 0 && records + count > RECORDS_PER_OBJECT) break;
    taken += 1;
    records += count;
  }
  const included = sameDay.slice(0, taken);
  const through = included.at(-1) ?? first;
  if (records === 0) {
    await db.run(moveCursor(merchantId, from, through));
    return { kind: "passed", transactions: taken };
  }
  const manifest = history.manifest(included.map((candidate) => candidate.id));
  const [claimed] = await db.all<{ id: number }>(claimObject({ merchantId, day, from, through, first, manifest, now }));
  const object = claimed && (await db.select().from(archiveObjects).where(eq(archiveObjects.id, claimed.id)).get());
  if (!object) return { kind: "busy" };
  return writeObject({ db, bucket, object, now });
}

/**
 * The next transactions of the merchant's walk: last changed before `cutoff`, after the cursor, in the order of
 * `transactions_merchant_updated`, which serves the whole query (no sort, no scan).
 */
export function archiveCandidates({
  db,
  merchantId,
  cutoff,
  from,
}: {
  db: Database;
  merchantId: string;
  cutoff: string;
  from: Position | null;
}) {
  return db
    .select({ id: transactions.id, updatedAt: transactions.updatedAt, status: transactions.status })
    .from(transactions)
    .where(
      and(
        eq(transactions.merchantId, merchantId),
        lt(transactions.updatedAt, cutoff),
        afterRow("asc", [transactions.updatedAt, transactions.id], from ? [from.updatedAt, from.id] : undefined),
      ),
    )
    .orderBy(asc(transactions.updatedAt), asc(transactions.id))
    .limit(TRANSACTIONS_PER_OBJECT);
}

/** The R2 key: one prefix per merchant and UTC day, then where the object's range starts. */
export function objectKey(merchantId: string, day: string, first: Position): string {
  return archiveKey(merchantId, `${day}/${first.updatedAt.slice(11).replace(/[:.]/g, "")}-${first.id}`);
}

/** `column IS value` on the cursor where it stood when the walk read it: the compare-and-set of claims and moves. */
const cursorStandsAt = (from: Position | null) =>
  sql`${retentionCursors.archivedThroughUpdatedAt} IS ${from?.updatedAt ?? null} AND ${retentionCursors.archivedThroughId} IS ${from?.id ?? null}`;

/** Moves the merchant's cursor from `from` to `through`, unless another run moved it first. */
function moveCursor(merchantId: string, from: Position | null, through: Position): SQL {
  return sql`UPDATE ${retentionCursors}
    SET archived_through_updated_at = ${through.updatedAt}, archived_through_id = ${through.id}
    WHERE ${retentionCursors.merchantId} = ${merchantId} AND ${cursorStandsAt(from)}`;
}

/**
 * Inserts the object's row as `writing`, only while the cursor stands where its manifest was read; the partial unique
 * index `archive_objects_one_writing` refuses a second open object of the merchant. Returns its id, or nothing.
 */
function claimObject(claim: {
  merchantId: string;
  day: string;
  from: Position | null;
  through: Position;
  first: Position;
  manifest: ArchiveManifest;
  now: number;
}): SQL {
  const { merchantId, day, from, through, manifest } = claim;
  return sql`INSERT INTO ${archiveObjects} (key, merchant_id, day, status, from_updated_at, from_id, through_updated_at,
      through_id, manifest, transactions, events, operations, created_at)
    SELECT ${objectKey(merchantId, day, claim.first)}, ${merchantId}, ${day}, 'writing', ${from?.updatedAt ?? null}, ${from?.id ?? null},
      ${through.updatedAt}, ${through.id}, ${JSON.stringify(manifest)}, ${manifest.transactions.length}, ${manifest.events.length},
      ${manifest.operations.length}, ${new Date(claim.now).toISOString()}
    WHERE EXISTS (SELECT 1 FROM ${retentionCursors} WHERE ${retentionCursors.merchantId} = ${merchantId} AND ${cursorStandsAt(from)})
    ON CONFLICT DO NOTHING
    RETURNING id`;
}

/** Steps 2 to 4 of `archiveMerchantHistory` for a claimed object. */
async function writeObject({
  db,
  bucket,
  object,
  now,
}: {
  db: Database;
  bucket: ArchiveBucket;
  object: ArchiveObjectRow;
  now: number;
}): Promise<ArchiveStep> {
  const manifest = object.manifest;
  if (!manifest) throw new Error(`archive object ${object.key} is writing without a manifest`);
  const { records, found, expected } = await readManifestRows({ db, merchantId: object.merchantId, manifest });
  if (found !== expected) {
    const current = await db.select({ status: archiveObjects.status }).from(archiveObjects).where(eq(archiveObjects.id, object.id)).get();
    // An overlapping run finished it between our reads: its rows left D1 in the same batch that marked it stored.
    if (found === 0 && current?.status === "stored") return { kind: "busy" };
    throw new Error(`archive object ${object.key}: ${found} of its ${expected} rows are in D1; left writing for an operator`);
  }

  const body = await encodeArchive(records);
  const sha256 = await sha256Hex(body);
  await bucket.put(object.key, body, {
    sha256,
    httpMetadata: { contentType: "application/gzip" },
    customMetadata: { merchant_id: object.merchantId, day: object.day, records: String(records.length), sha256 },
  });
  // Verified before anything leaves D1: an object that does not read back as written keeps its rows where they are.
  const stored = await bucket.head(object.key);
  if (!stored || stored.size !== body.byteLength || stored.customMetadata?.sha256 !== sha256) {
    throw new Error(`archive object ${object.key} did not read back as written; its rows stay in D1`);
  }
  await runBatch(db.$client, finishObject(object, body.byteLength, now));
  log("info", "retention.object_stored", {
    merchant_id: object.merchantId,
    key: object.key,
    transactions: object.transactions,
    records: records.length,
    bytes: body.byteLength,
  });
  return { kind: "stored", key: object.key, transactions: object.transactions, records: records.length };
}

/** Step 4 as one D1 batch; every statement reads the manifest from the object's row and acts only while it is `writing`. */
function finishObject(object: ArchiveObjectRow, bytes: number, now: number): SQL[] {
  const writing = sql`${archiveObjects.id} = ${object.id} AND ${archiveObjects.status} = 'writing'`;
  const from = object.fromUpdatedAt && object.fromId ? { updatedAt: object.fromUpdatedAt, id: object.fromId } : null;
  const storedAt = new Date(now).toISOString();
  return [
    // The records list the object's name in the strip UPDATE of deleteManifestRows (no row of its own: 0034).
    ...deleteManifestRows(object.merchantId, writing, archiveName(object.merchantId, object.key)),
    sql`${moveCursor(object.merchantId, from, { updatedAt: object.throughUpdatedAt, id: object.throughId })}
      AND EXISTS (SELECT 1 FROM ${archiveObjects} WHERE ${writing})`,
    sql`UPDATE ${archiveObjects} SET status = 'stored', manifest = NULL, bytes = ${bytes}, stored_at = ${storedAt} WHERE ${writing}`,
  ];
}

/**
 * The merchants served here (db/fence.ts) with something to archive, least recently served first: an object left
 * `writing`, or a transaction last changed before `cutoff` past the cursor. One probe of `transactions_merchant_updated` per merchant, starting at the
 * cursor's `updated_at`, so what was archived before is never walked again.
 */
export function merchantsWithWork({ db, cutoff }: { db: Database; cutoff: string }) {
  const t = alias(transactions, "t");
  const c = retentionCursors;
  const pastCursor = sql`${t.updatedAt} >= coalesce(${c.archivedThroughUpdatedAt}, '') AND (${c.archivedThroughUpdatedAt} IS NULL
    OR ${afterRow("asc", [t.updatedAt, t.id], [c.archivedThroughUpdatedAt, c.archivedThroughId])})`;
  const due = db
    .select({ id: t.id })
    .from(t)
    .where(and(eq(t.merchantId, c.merchantId), lt(t.updatedAt, cutoff), pastCursor));
  const open = db
    .select({ id: archiveObjects.id })
    .from(archiveObjects)
    .where(and(eq(archiveObjects.merchantId, c.merchantId), eq(archiveObjects.status, "writing")));
  return db
    .select({ merchantId: c.merchantId })
    .from(c)
    .where(and(servedHere(c.merchantId), or(exists(due), exists(open))))
    .orderBy(asc(c.lastRunAt), asc(c.merchantId))
    .limit(MERCHANTS_PER_RUN);
}

/** What one run archived. */
export interface ArchiveRun {
  objectsStored: number;
  transactionsArchived: number;
  recordsArchived: number;
  merchantsServed: number;
  failures: { merchantId: string; error: unknown }[];
}

/**
 * One cron run of the archive: every merchant served here gets a cursor, then up to MERCHANTS_PER_RUN merchants with work take
 * their turn, least recently served first, each stepping until it has nothing more older than the cutoff, another run
 * holds it, or the run has stored OBJECTS_PER_RUN objects (the run's cap; a merchant's turn is also at most
 * OBJECTS_PER_RUN steps). One merchant's failure (R2 refusing a put) is logged and leaves its object for the next run;
 * the others go on.
 */
export async function archiveHistories({
  db,
  bucket,
  now,
  cutoff,
}: {
  db: Database;
  bucket: ArchiveBucket;
  now: number;
  /** ISO 8601: transactions last changed before it are archived. */
  cutoff: string;
}): Promise<ArchiveRun> {
  await db.run(
    sql`INSERT INTO ${retentionCursors} (merchant_id) SELECT ${merchants.id} FROM ${merchants} WHERE ${servedHere(merchants.id)} ON CONFLICT DO NOTHING`,
  );
  const turns = await merchantsWithWork({ db, cutoff });
  const run: ArchiveRun = { objectsStored: 0, transactionsArchived: 0, recordsArchived: 0, merchantsServed: 0, failures: [] };
  const served: string[] = [];
  for (const { merchantId } of turns) {
    if (run.objectsStored >= OBJECTS_PER_RUN) break;
    served.push(merchantId);
    try {
      for (let steps = 0; steps < OBJECTS_PER_RUN && run.objectsStored < OBJECTS_PER_RUN; steps++) {
        const step = await archiveMerchantHistory({ db, bucket, merchantId, cutoff, now });
        if (step.kind === "idle" || step.kind === "busy") break;
        if (step.kind === "stored") {
          run.objectsStored += 1;
          run.transactionsArchived += step.transactions;
          run.recordsArchived += step.records;
        }
      }
    } catch (error) {
      log("error", "retention.archive_failed", { merchant_id: merchantId, error: safeErrorMessage(error) });
      run.failures.push({ merchantId, error });
    }
  }
  if (served.length > 0) {
    await db
      .update(retentionCursors)
      .set({ lastRunAt: new Date(now).toISOString() })
      .where(inList(retentionCursors.merchantId, served));
  }
  run.merchantsServed = served.length;
  return run;
}
