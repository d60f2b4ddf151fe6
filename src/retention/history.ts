import { and, eq, isNotNull, sql } from "drizzle-orm";
import { inList, lookUpByMerchant, type MerchantKey } from "../db/bulk";
import type { Database } from "../db/client";
import type { EventRow, OperationRow } from "../db/rows";
import { transactions } from "../db/schema";
import { log } from "../lib/log";
import { type ArchiveBucket, type ArchiveRecord, decodeArchive } from "./archive-format";

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** SQL's `ORDER BY fired_at, id` (NULLs first), for events from D1 and from the archive alike. */
export const byFiredAt = (a: EventRow, b: EventRow) =>
  a.firedAt === b.firedAt ? compare(a.id, b.id) : a.firedAt === null ? -1 : b.firedAt === null ? 1 : compare(a.firedAt, b.firedAt);

/** SQL's `ORDER BY created_at, id`, for operations from D1 and from the archive alike. */
export const byCreatedAt = (a: OperationRow, b: OperationRow) => compare(a.createdAt, b.createdAt) || compare(a.id, b.id);

const KEY_SUFFIX = ".ndjson.gz";
const keyPrefix = (merchantId: string) => `history/${merchantId}/`;

/** An object's R2 key from its name (`archive_names`): under the merchant's own prefix, so a record names none of another's. */
export const archiveKey = (merchantId: string, name: string) => `${keyPrefix(merchantId)}${name}${KEY_SUFFIX}`;

/** An object's name from its R2 key (`archiveKey` undone); a key outside the merchant's prefix is refused. */
export function archiveName(merchantId: string, key: string): string {
  const prefix = keyPrefix(merchantId);
  if (!key.startsWith(prefix) || !key.endsWith(KEY_SUFFIX) || key.length <= prefix.length + KEY_SUFFIX.length)
    throw new Error(`archive key ${key} is not one of merchant ${merchantId}'s`);
  return key.slice(prefix.length, -KEY_SUFFIX.length);
}

/**
 * The keys of the archive objects holding part of a transaction's history, a query for the caller's D1 batch: the names
 * its record lists (0034; 0035 merged the rows `archived_histories` still held into them).
 */
export function archivedObjectsOf({ db, merchantId, transactionId }: { db: Database; merchantId: string; transactionId: string }) {
  // The merchant is the caller's (bound), so a name resolves under its prefix only.
  return db
    .select({ key: sql<string>`${keyPrefix(merchantId)} || n.value || ${KEY_SUFFIX}`.as("key") })
    .from(sql`${transactions} CROSS JOIN json_each(${transactions.archiveNames}) AS n`)
    .where(and(eq(transactions.merchantId, merchantId), eq(transactions.id, transactionId)));
}

/** Which of these transactions have part of their history archived (in R2, gone from D1): their records list a name. */
export async function archivedTransactions(db: Database, wanted: readonly MerchantKey[]) {
  const found = await lookUpByMerchant(wanted, (merchantId, ids) =>
    db
      .select({ id: transactions.id })
      .from(transactions)
      .where(and(eq(transactions.merchantId, merchantId), inList(transactions.id, ids), isNotNull(transactions.archiveNames))),
  );
  return { has: (key: MerchantKey) => found.get(key) !== undefined };
}

/** The transaction's rows in the archive objects named by `keys` (read from R2 side by side): its history and its timeline. */
export async function readArchivedHistory({
  bucket,
  keys,
  merchantId,
  transactionId,
}: {
  bucket: Pick<ArchiveBucket, "get">;
  keys: readonly string[];
  merchantId: string;
  transactionId: string;
}) {
  const records = await Promise.all(
    keys.map(async (key) => {
      const object = await bucket.get(key);
      if (!object) {
        // Its rows left D1 only after it was written and read back: a missing object is history lost, never "none".
        log("error", "retention.archive_object_missing", { merchant_id: merchantId, transaction_id: transactionId, key });
        throw new Error(`archive object ${key} is missing`);
      }
      return decodeArchive(object.body);
    }),
  );
  const mine = records.flat().filter((record) => record.merchantId === merchantId && record.transactionId === transactionId);
  const of = <Kind extends ArchiveRecord["record"]>(kind: Kind) =>
    mine.filter((record): record is Extract<ArchiveRecord, { record: Kind }> => record.record === kind);
  // Widened to the D1 row types, so an archived row and a live one merge as one list.
  const events: EventRow[] = of("event");
  const operations: OperationRow[] = of("operation");
  return {
    events,
    operations,
    deliveries: of("delivery"),
    fetchBacks: of("fetch_back"),
    statusChanges: of("status_change"),
    fulfillmentAttempts: of("fulfillment_attempt"),
  };
}

/**
 * D1's rows and the archive's as one history in `order`, one row per id: the archived one when both have it (an event
 * delivered again after its row was archived is verified again, but its first outcome is the one that stuck).
 */
export function mergeHistory<Row extends { id: string }>(
  archived: readonly Row[],
  live: readonly Row[],
  order: (a: Row, b: Row) => number,
): Row[] {
  if (archived.length === 0) return [...live].sort(order);
  const byId = new Map<string, Row>();
  for (const row of [...archived, ...live]) if (!byId.has(row.id)) byId.set(row.id, row);
  return [...byId.values()].sort(order);
}
