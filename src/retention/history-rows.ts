import { and, eq, inArray, type SQL, type SQLWrapper, sql } from "drizzle-orm";
import { inList, inPairList, sqlLiterals } from "../db/bulk";
import type { Database } from "../db/client";
import { historyOf, historyOperationColumns, historyOperationsFrom } from "../db/operation-history";
import type { DeliveryRow, EventRow, FetchBackRow, FulfillmentAttemptRow, OperationRow, StatusChangeRow } from "../db/rows";
import {
  type ArchiveManifest,
  archiveObjects,
  events,
  fetchBacks,
  fulfillmentAttempts,
  transactions,
  webhookDeliveries,
} from "../db/schema";
import { statusHistoryColumns, statusHistoryFrom, withoutFirstStatuses } from "../db/status-history";
import type { ArchiveRecord } from "./archive-format";
import { byCreatedAt, byFiredAt } from "./history";

/*
 * The rows of a transaction's history, as one archive object takes them: its settled inbox rows and operations (the
 * history endpoints; a record in flight keeps its operations in D1), and its timeline rows (deliveries and fetch-backs of those events, status changes, fulfilment
 * attempts), so `GET …/timeline` reads an archived payment back as `…/events` and `…/operations` do.
 */

/** The inbox rows that are a transaction's history (`GET …/events`); pending, rejected and ignored ones are not. */
export const HISTORY_OUTCOMES = ["applied", "stale"] as const;

/**
 * The ids of each kind of row a manifest lists; objects claimed before timeline rows were archived list none of them.
 * `statusChanges` (rows of `transaction_status_changes`, which 0035 emptied) are still counted: a claim naming some was
 * dropped by 0035, so one left (a merchant fenced by a move then) fails its read-back rather than be stored without them.
 */
function manifestLists(manifest: ArchiveManifest) {
  return {
    events: manifest.events,
    operations: manifest.operations,
    deliveries: manifest.deliveries ?? [],
    fetchBacks: manifest.fetchBacks ?? [],
    statusChanges: manifest.statusChanges ?? [],
    fulfillmentAttempts: manifest.fulfillmentAttempts ?? [],
  };
}

/**
 * The ids of the transactions' history rows now in D1 (one D1 batch), by transaction; operations only of `operationsOf`
 * (the settled ones: a record in flight keeps its operations, which reconciliation's refresh would write back at once).
 */
export async function historyIds({
  db,
  merchantId,
  transactionIds,
  operationsOf,
}: {
  db: Database;
  merchantId: string;
  transactionIds: string[];
  operationsOf: string[];
}) {
  if (transactionIds.length === 0) return groupHistoryIds([[], [], [], [], [], []]);
  const historyEvents = and(
    eq(events.merchantId, merchantId),
    inList(events.transactionId, transactionIds),
    inArray(events.outcome, HISTORY_OUTCOMES),
  );
  return groupHistoryIds(
    await db.batch([
      db.select({ id: events.id, transactionId: events.transactionId }).from(events).where(historyEvents),
      db
        .select({ id: historyOperationColumns.id, transactionId: historyOperationColumns.transactionId })
        .from(historyOperationsFrom)
        .where(historyOf(merchantId, operationsOf)),
      // CROSS JOIN keeps the transactions' events the outer loop, as the timeline's own reads do.
      db
        .select({ eventId: webhookDeliveries.eventId, deliveryId: webhookDeliveries.deliveryId, transactionId: events.transactionId })
        .from(events)
        .crossJoin(webhookDeliveries)
        .where(and(historyEvents, eq(webhookDeliveries.merchantId, events.merchantId), eq(webhookDeliveries.eventId, events.id))),
      db
        .select({ id: fetchBacks.id, transactionId: events.transactionId })
        .from(events)
        .crossJoin(fetchBacks)
        .where(and(historyEvents, eq(fetchBacks.merchantId, events.merchantId), eq(fetchBacks.eventId, events.id))),
      db
        .select({ id: fulfillmentAttempts.id, transactionId: fulfillmentAttempts.transactionId })
        .from(fulfillmentAttempts)
        .where(and(eq(fulfillmentAttempts.merchantId, merchantId), inList(fulfillmentAttempts.transactionId, transactionIds))),
      db
        .select({ id: statusHistoryColumns.id, transactionId: statusHistoryColumns.transactionId })
        .from(statusHistoryFrom)
        .where(historyOf(merchantId, transactionIds)),
    ]),
  );
}

type IdRows<Id> = { id: Id; transactionId: string | null }[];

/** `historyIds`' reads grouped by transaction: how many records each would add, and the manifest of those included. */
function groupHistoryIds([eventIds, operationIds, deliveryIds, fetchBackIds, attemptIds, entries]: [
  IdRows<string>,
  IdRows<string>,
  { eventId: string; deliveryId: string; transactionId: string | null }[],
  IdRows<number>,
  IdRows<number>,
  IdRows<number>,
]) {
  const byTransaction = <Row extends { transactionId: string | null }>(rows: Row[]) => Map.groupBy(rows, (row) => row.transactionId ?? "");
  const kinds = {
    events: byTransaction(eventIds),
    operations: byTransaction(operationIds),
    deliveries: byTransaction(deliveryIds),
    fetchBacks: byTransaction(fetchBackIds),
    fulfillmentAttempts: byTransaction(attemptIds),
    statusHistory: byTransaction(entries),
  };
  const ids = <Row, Id>(of: Map<string, Row[]>, included: string[], id: (row: Row) => Id) =>
    included.flatMap((transactionId) => (of.get(transactionId) ?? []).map(id));
  return {
    recordsOf: (transactionId: string) => Object.values(kinds).reduce((sum, of) => sum + (of.get(transactionId)?.length ?? 0), 0),
    manifest: (included: string[]): ArchiveManifest => ({
      transactions: included.filter((transactionId) => Object.values(kinds).some((of) => of.has(transactionId))),
      events: ids(kinds.events, included, (row) => row.id),
      operations: ids(kinds.operations, included, (row) => row.id),
      deliveries: ids(kinds.deliveries, included, (row): [string, string] => [row.eventId, row.deliveryId]),
      fetchBacks: ids(kinds.fetchBacks, included, (row) => row.id),
      fulfillmentAttempts: ids(kinds.fulfillmentAttempts, included, (row) => row.id),
      statusHistory: included.flatMap((id): [string, number][] => {
        const count = kinds.statusHistory.get(id)?.length ?? 0;
        return count > 0 ? [[id, count]] : [];
      }),
    }),
  };
}

/**
 * The rows a manifest names, read in one D1 batch (all or none of them: only the object's finish deletes them, all at
 * once), as the object's records, and how many of the manifest's rows were found.
 */
export async function readManifestRows({ db, merchantId, manifest }: { db: Database; merchantId: string; manifest: ArchiveManifest }) {
  const lists = manifestLists(manifest);
  const statusHistory = manifest.statusHistory ?? [];
  const [eventRows, operationRows, deliveryRows, fetchBackRows, attemptRows, changeRows] = await db.batch([
    db
      .select()
      .from(events)
      .where(and(eq(events.merchantId, merchantId), inList(events.id, lists.events))),
    db
      .select(historyOperationColumns)
      .from(historyOperationsFrom)
      .where(and(historyOf(merchantId, manifest.transactions), inList(sql`j.value ->> '$.id'`, lists.operations))),
    db
      .select()
      .from(webhookDeliveries)
      .where(
        and(
          eq(webhookDeliveries.merchantId, merchantId),
          inPairList([webhookDeliveries.eventId, webhookDeliveries.deliveryId], lists.deliveries),
        ),
      ),
    db
      .select()
      .from(fetchBacks)
      .where(and(eq(fetchBacks.merchantId, merchantId), numberList(fetchBacks.id, lists.fetchBacks))),
    db
      .select()
      .from(fulfillmentAttempts)
      .where(and(eq(fulfillmentAttempts.merchantId, merchantId), numberList(fulfillmentAttempts.id, lists.fulfillmentAttempts))),
    db
      .select(statusHistoryColumns)
      .from(statusHistoryFrom)
      .where(
        and(
          historyOf(
            merchantId,
            statusHistory.map(([id]) => id),
          ),
          sql`j.key < (SELECT c.value ->> 1 FROM json_each(${JSON.stringify(statusHistory)}) AS c WHERE c.value ->> 0 = transactions.id)`,
        ),
      ),
  ]);
  const rows = { eventRows, operationRows, deliveryRows, fetchBackRows, changeRows, attemptRows };
  const found = Object.values(rows).reduce((sum, list) => sum + list.length, 0);
  const expected = Object.values(lists).reduce((sum, list) => sum + list.length, 0) + statusHistory.reduce((sum, [, n]) => sum + n, 0);
  return { records: archiveRecords(rows), found, expected };
}

/** `column IN (…ids)` for integer ids, bound as one JSON parameter as `inList` binds text ids. */
const numberList = (column: SQLWrapper, ids: readonly number[]) => sql`${column} IN (SELECT value FROM json_each(${JSON.stringify(ids)}))`;

interface HistoryRows {
  eventRows: EventRow[];
  operationRows: OperationRow[];
  deliveryRows: DeliveryRow[];
  fetchBackRows: FetchBackRow[];
  changeRows: StatusChangeRow[];
  attemptRows: FulfillmentAttemptRow[];
}

const compare = (a: string | number, b: string | number) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The object's lines in a fixed order, so a rewrite is identical: by transaction, its events oldest first, its
 * operations, then its deliveries, fetch-backs, status changes and fulfilment attempts, each in the timeline's order.
 */
function archiveRecords(rows: HistoryRows): ArchiveRecord[] {
  const transactionOfEvent = new Map(rows.eventRows.map((row) => [row.id, row.transactionId ?? ""]));
  const ofTransaction = <Row>(list: Row[], transactionId: (row: Row) => string) => Map.groupBy(list, transactionId);
  const eventsOf = ofTransaction(rows.eventRows, (row) => row.transactionId ?? "");
  const operationsOf = ofTransaction(rows.operationRows, (row) => row.transactionId);
  const deliveriesOf = ofTransaction(rows.deliveryRows, (row) => transactionOfEvent.get(row.eventId) ?? "");
  const fetchBacksOf = ofTransaction(rows.fetchBackRows, (row) => transactionOfEvent.get(row.eventId) ?? "");
  const changesOf = ofTransaction(rows.changeRows, (row) => row.transactionId);
  const attemptsOf = ofTransaction(rows.attemptRows, (row) => row.transactionId);
  const transactionIds = [...new Set([eventsOf, operationsOf, changesOf, attemptsOf].flatMap((of) => [...of.keys()]))].sort();
  return transactionIds.flatMap((id): ArchiveRecord[] => [
    ...(eventsOf.get(id) ?? []).sort(byFiredAt).map((row) => ({ record: "event" as const, ...row })),
    ...(operationsOf.get(id) ?? []).sort(byCreatedAt).map((row) => ({ record: "operation" as const, ...row })),
    ...(deliveriesOf.get(id) ?? [])
      .sort((a, b) => compare(a.receivedAt, b.receivedAt) || compare(a.deliveryId, b.deliveryId))
      .map((row) => ({ record: "delivery" as const, transactionId: id, ...row })),
    ...(fetchBacksOf.get(id) ?? [])
      .sort((a, b) => compare(a.at, b.at) || compare(a.id, b.id))
      .map((row) => ({ record: "fetch_back" as const, transactionId: id, ...row })),
    ...(changesOf.get(id) ?? [])
      .sort((a, b) => compare(a.at, b.at) || compare(a.id, b.id))
      .map((row) => ({ record: "status_change" as const, ...row })),
    ...(attemptsOf.get(id) ?? []).sort((a, b) => compare(a.id, b.id)).map((row) => ({ record: "fulfillment_attempt" as const, ...row })),
  ]);
}

/**
 * The archived operations and oldest status changes leave their records' histories (NULL when none is left), and each
 * record lists the object's `name` (only if absent, so a second run never lists it twice), in one UPDATE a record.
 * `updated_at` stays: the record did not change, so no list cursor, ETag or endpoint sees it.
 */
function stripHistories(merchantId: string, listed: (list: keyof ArchiveManifest) => SQL, writing: SQL, name: string): SQL {
  const archivedOne = sql`j.value ->> '$.id' IN ${listed("operations")}`;
  const holdsArchived = sql`EXISTS (SELECT 1 FROM json_each(${transactions.operationHistory}) AS j WHERE ${archivedOne})`;
  const archivedChanges = sql`(SELECT c.value ->> 1 FROM ${archiveObjects}, json_each(${archiveObjects.manifest}, '$.statusHistory') AS c
    WHERE ${writing} AND c.value ->> 0 = ${transactions.id})`;
  const listsName = sql`EXISTS (SELECT 1 FROM json_each(${transactions.archiveNames}) AS n WHERE n.value = ${name})`;
  return sql`UPDATE ${transactions} SET
      operation_history = CASE WHEN ${holdsArchived} THEN (SELECT nullif(json_group_array(json(j.value)), '[]')
        FROM json_each(${transactions.operationHistory}) AS j WHERE NOT ${archivedOne}) ELSE operation_history END,
      status_history = CASE WHEN ${archivedChanges} IS NULL THEN status_history ELSE ${withoutFirstStatuses(archivedChanges)} END,
      archive_names = CASE WHEN ${listsName} THEN archive_names ELSE json_insert(coalesce(archive_names, '[]'), '$[#]', ${name}) END
    WHERE ${transactions.merchantId} = ${merchantId} AND ${transactions.id} IN ${listed("transactions")}
      AND (${holdsArchived} OR ${archivedChanges} IS NOT NULL OR NOT ${listsName})`;
}

/**
 * The deletions of an object's finish (archive.ts `finishObject`), in its D1 batch: exactly the rows its manifest names,
 * read from the object's row while it is still `writing` (`writing` is that condition), so a late second finish deletes
 * nothing; the records it names list the object's `name` (its key within the merchant's prefix, history.ts `archiveName`).
 */
export function deleteManifestRows(merchantId: string, writing: SQL, name: string): SQL[] {
  const listed = (list: keyof ArchiveManifest) =>
    sql`(SELECT j.value FROM ${archiveObjects}, json_each(${archiveObjects.manifest}, ${`$.${list}`}) AS j WHERE ${writing})`;
  const byId = (table: typeof fetchBacks | typeof fulfillmentAttempts, list: keyof ArchiveManifest) =>
    sql`DELETE FROM ${table} WHERE ${table.merchantId} = ${merchantId} AND ${table.id} IN ${listed(list)}`;
  return [
    sql`DELETE FROM ${events} WHERE ${events.merchantId} = ${merchantId}
      AND ${events.outcome} IN (${sqlLiterals(HISTORY_OUTCOMES)}) AND ${events.id} IN ${listed("events")}`,
    stripHistories(merchantId, listed, writing, name),
    sql`DELETE FROM ${webhookDeliveries} WHERE ${webhookDeliveries.merchantId} = ${merchantId}
      AND (${webhookDeliveries.eventId}, ${webhookDeliveries.deliveryId}) IN (
        SELECT j.value ->> 0, j.value ->> 1 FROM ${archiveObjects}, json_each(${archiveObjects.manifest}, '$.deliveries') AS j WHERE ${writing})`,
    byId(fetchBacks, "fetchBacks"),
    byId(fulfillmentAttempts, "fulfillmentAttempts"),
  ];
}
