import { and, asc, desc, eq, getTableName, gt, inArray, Subquery, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { afterRow } from "../db/keyset";
import { historyOf, historyOperationColumns, historyOperationsFrom } from "../db/operation-history";
import { events, fulfillments, recordColumns, transactionReferences, transactions } from "../db/schema";
import { ApiError } from "../errors";
import { keysetPage } from "../lib/cursor";
import type { ArchiveBucket } from "../retention/archive-format";
import { archivedObjectsOf, byCreatedAt, byFiredAt, mergeHistory, readArchivedHistory } from "../retention/history";
import type { TransactionStatus } from "../smart-router/status";
import { continueFilters, cursorPayload, decodeCursor, type ListFilters, type PagePosition } from "./cursor";
import { presentAppliedEvent, presentOperation, presentTransaction } from "./present";
import { referenceMatches } from "./references";

/** The merchant a status API request acts for, as the auth middleware established it. */
export interface MerchantScope {
  id: string;
  fulfillmentConfigured: boolean;
}

/** A transaction row with its outbox row's fulfilment columns: what `presentTransaction` takes. */
export const transactionWithFulfillment = {
  transaction: recordColumns,
  fulfillment: { status: fulfillments.status, requestedAt: fulfillments.requestedAt, deliveredAt: fulfillments.deliveredAt },
};

/** The join of a transaction to its outbox row (at most one). */
export const joinFulfillment = and(eq(fulfillments.merchantId, transactions.merchantId), eq(fulfillments.transactionId, transactions.id));

/** The 404 of a transaction the merchant does not have. */
export const transactionNotFound = (transactionId: string) => new ApiError("not_found", `transaction ${transactionId} not found`);

/** One transaction of the merchant, as the status API shows it; another merchant's is a 404 like a missing one. */
export async function findTransaction({ db, merchant, transactionId }: { db: Database; merchant: MerchantScope; transactionId: string }) {
  const row = await db
    .select(transactionWithFulfillment)
    .from(transactions)
    .leftJoin(fulfillments, joinFulfillment)
    .where(and(eq(transactions.merchantId, merchant.id), eq(transactions.id, transactionId)))
    .get();
  if (!row) throw transactionNotFound(transactionId);
  return presentTransaction(row.transaction, row.fulfillment, merchant.fulfillmentConfigured);
}

/**
 * The list's records with a status filter, read through `transactions_merchant_status_updated` by name: without ANALYZE
 * statistics the planner takes `transactions_merchant_updated` for a status + updated_after page and filters every status
 * in the range (it did once `transactions_status_updated`, which no query named, was dropped in 0033).
 */
const transactionsByStatus = new Subquery(
  // Named `transactions` so the selected columns stay its own; SQLite flattens the subquery, keeping the index it names.
  sql`SELECT * FROM ${transactions} INDEXED BY transactions_merchant_status_updated`,
  {},
  getTableName(transactions),
);

/**
 * The list query: newest `updated_at` first, ties by id descending, resuming strictly after `position`.
 * Served by `transactions_merchant_updated` (or `…_status_updated` with a status, named, `…_payment_type_updated` with a
 * payment type), read backwards: no sort step. With a reference, the references' primary key is the outer loop (CROSS JOIN
 * keeps SQLite from walking the merchant's records in order instead) and each match is read by its own primary key, then
 * the matches are sorted: a page reads the rows of the reference's matches, whatever the merchant's number of records.
 */
export function transactionPageQuery({
  db,
  merchantId,
  filters,
  position,
  limit,
}: {
  db: Database;
  merchantId: string;
  filters: ListFilters;
  position?: PagePosition;
  limit: number;
}) {
  const where = and(
    eq(transactions.merchantId, merchantId),
    filters.status === undefined ? undefined : eq(transactions.status, filters.status),
    filters.updatedAfter === undefined ? undefined : gt(transactions.updatedAt, filters.updatedAfter),
    filters.paymentType === undefined ? undefined : eq(transactions.paymentType, filters.paymentType),
    afterRow("desc", [transactions.updatedAt, transactions.id], position && [position.updatedAt, position.id]),
  );
  const order = [desc(transactions.updatedAt), desc(transactions.id)];
  if (filters.reference === undefined) {
    return db
      .select(transactionWithFulfillment)
      .from(filters.status === undefined ? transactions : transactionsByStatus)
      .leftJoin(fulfillments, joinFulfillment)
      .where(where)
      .orderBy(...order)
      .limit(limit);
  }
  return db
    .select(transactionWithFulfillment)
    .from(transactionReferences)
    .crossJoin(transactions)
    .leftJoin(fulfillments, joinFulfillment)
    .where(and(referenceMatches(merchantId, filters.reference), eq(transactions.id, transactionReferences.transactionId), where))
    .orderBy(...order)
    .limit(limit);
}

/** One page of the merchant's transactions and the cursor of the next, null on the last page. */
export async function listTransactions({
  db,
  merchant,
  query,
}: {
  db: Database;
  merchant: MerchantScope;
  query: { status?: TransactionStatus; updated_after?: string; payment_type?: string; reference?: string; limit: number; cursor?: string };
}) {
  const requested: ListFilters = {
    status: query.status,
    paymentType: query.payment_type,
    reference: query.reference,
    // Stored timestamps are UTC with milliseconds; comparing strings needs the same shape.
    updatedAfter: query.updated_after === undefined ? undefined : new Date(query.updated_after).toISOString(),
  };
  const resumed = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  const filters = resumed ? continueFilters(resumed.filters, requested) : requested;
  // One row more than asked tells whether another page exists without a count.
  const rows = await transactionPageQuery({ db, merchantId: merchant.id, filters, position: resumed?.position, limit: query.limit + 1 });
  const { page, nextCursor } = keysetPage(rows, query.limit, ({ transaction }) => cursorPayload(transaction, filters));
  return {
    transactions: page.map((row) => presentTransaction(row.transaction, row.fulfillment, merchant.fulfillmentConfigured)),
    next_cursor: nextCursor,
  };
}

/** The query that finds the merchant's transaction (no row: a 404, another merchant's included), to batch with its reads. */
export const transactionOfMerchant = ({ db, merchantId, transactionId }: { db: Database; merchantId: string; transactionId: string }) =>
  db
    .select({ id: transactions.id })
    .from(transactions)
    .where(and(eq(transactions.merchantId, merchantId), eq(transactions.id, transactionId)));

/** What a read of one transaction's history (operations, events) takes: D1, the archive, and whose transaction it is. */
interface TransactionHistoryQuery {
  db: Database;
  archive: ArchiveBucket;
  merchant: MerchantScope;
  transactionId: string;
}

/** A transaction's operations in its record's history (db/operation-history.ts): one seek of the record's key. */
export const operationsOfTransaction = ({ db, merchantId, transactionId }: { db: Database; merchantId: string; transactionId: string }) =>
  db
    .select(historyOperationColumns)
    .from(historyOperationsFrom)
    .where(historyOf(merchantId, [transactionId]));

/** The transaction's operations, oldest first, from D1 and the archive; a transaction the merchant does not have is a 404. */
export async function listOperations({ db, archive, merchant, transactionId }: TransactionHistoryQuery) {
  const scope = { db, merchantId: merchant.id, transactionId };
  const [found, history, archived] = await db.batch([
    transactionOfMerchant(scope),
    operationsOfTransaction(scope),
    archivedObjectsOf(scope),
  ]);
  if (found.length === 0) throw transactionNotFound(transactionId);
  const keys = archived.map((object) => object.key);
  const fromArchive = await readArchivedHistory({ bucket: archive, keys, merchantId: merchant.id, transactionId });
  return {
    transaction_id: transactionId,
    operations: mergeHistory(fromArchive.operations, history, byCreatedAt).map(presentOperation),
  };
}

/**
 * The Smart Router events applied to the transaction (outcome `applied`, or `stale` when a newer snapshot was already
 * stored), oldest first by fired_at, from D1 and the archive; pending, rejected and ignored deliveries are not part of
 * its history.
 */
export async function listAppliedEvents({ db, archive, merchant, transactionId }: TransactionHistoryQuery) {
  const [found, rows, archived] = await db.batch([
    transactionOfMerchant({ db, merchantId: merchant.id, transactionId }),
    db
      .select()
      .from(events)
      .where(
        and(eq(events.merchantId, merchant.id), eq(events.transactionId, transactionId), inArray(events.outcome, ["applied", "stale"])),
      )
      .orderBy(asc(events.firedAt), asc(events.id)),
    archivedObjectsOf({ db, merchantId: merchant.id, transactionId }),
  ]);
  if (found.length === 0) throw transactionNotFound(transactionId);
  const keys = archived.map((object) => object.key);
  const history = await readArchivedHistory({ bucket: archive, keys, merchantId: merchant.id, transactionId });
  return {
    transaction_id: transactionId,
    events: mergeHistory(history.events, rows, byFiredAt).flatMap((event) => presentAppliedEvent(event) ?? []),
  };
}
