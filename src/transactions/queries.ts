import { and, asc, desc, eq, gt, inArray, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { events, fulfillments, operations, transactions } from "../db/schema";
import { ApiError } from "../errors";
import { continueFilters, decodeCursor, encodeCursor, type ListFilters, type PagePosition } from "./cursor";
import { presentTransaction } from "./present";
import type { TransactionStatus } from "./status";

/** The merchant a status API request acts for, as the auth middleware established it. */
export interface MerchantScope {
  id: string;
  fulfillmentConfigured: boolean;
}

const transactionWithFulfillment = {
  transaction: transactions,
  fulfillment: { status: fulfillments.status, requestedAt: fulfillments.requestedAt, deliveredAt: fulfillments.deliveredAt },
};

const joinFulfillment = and(eq(fulfillments.merchantId, transactions.merchantId), eq(fulfillments.transactionId, transactions.id));

const notFound = (transactionId: string) => new ApiError("not_found", `transaction ${transactionId} not found`);

/** One transaction of the merchant, as the status API shows it; another merchant's is a 404 like a missing one. */
export async function findTransaction({ db, merchant, transactionId }: { db: Database; merchant: MerchantScope; transactionId: string }) {
  const row = await db
    .select(transactionWithFulfillment)
    .from(transactions)
    .leftJoin(fulfillments, joinFulfillment)
    .where(and(eq(transactions.merchantId, merchant.id), eq(transactions.id, transactionId)))
    .get();
  if (!row) throw notFound(transactionId);
  return presentTransaction(row.transaction, row.fulfillment, merchant.fulfillmentConfigured);
}

/**
 * The list query: newest `updated_at` first, ties by id descending, resuming strictly after `position`.
 * Served by `transactions_merchant_updated` (or `…_status_updated` with a status), read backwards: no sort step.
 */
export function transactionPageQuery(
  db: Database,
  { merchantId, filters, position, limit }: { merchantId: string; filters: ListFilters; position?: PagePosition; limit: number },
) {
  return db
    .select(transactionWithFulfillment)
    .from(transactions)
    .leftJoin(fulfillments, joinFulfillment)
    .where(
      and(
        eq(transactions.merchantId, merchantId),
        filters.status === undefined ? undefined : eq(transactions.status, filters.status),
        filters.updatedAfter === undefined ? undefined : gt(transactions.updatedAt, filters.updatedAfter),
        position === undefined ? undefined : sql`(${transactions.updatedAt}, ${transactions.id}) < (${position.updatedAt}, ${position.id})`,
      ),
    )
    .orderBy(desc(transactions.updatedAt), desc(transactions.id))
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
  query: { status?: TransactionStatus; updated_after?: string; limit: number; cursor?: string };
}) {
  const requested: ListFilters = {
    status: query.status,
    // Stored timestamps are UTC with milliseconds; comparing strings needs the same shape.
    updatedAfter: query.updated_after === undefined ? undefined : new Date(query.updated_after).toISOString(),
  };
  const resumed = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  const filters = resumed ? continueFilters(resumed.filters, requested) : requested;
  // One row more than asked tells whether another page exists without a count.
  const rows = await transactionPageQuery(db, { merchantId: merchant.id, filters, position: resumed?.position, limit: query.limit + 1 });
  const page = rows.slice(0, query.limit);
  const last = page.at(-1);
  return {
    transactions: page.map((row) => presentTransaction(row.transaction, row.fulfillment, merchant.fulfillmentConfigured)),
    next_cursor:
      rows.length > query.limit && last ? encodeCursor({ updatedAt: last.transaction.updatedAt, id: last.transaction.id }, filters) : null,
  };
}

const exists = (db: Database, merchantId: string, transactionId: string) =>
  db
    .select({ id: transactions.id })
    .from(transactions)
    .where(and(eq(transactions.merchantId, merchantId), eq(transactions.id, transactionId)));

/** The transaction's operations, oldest first; a transaction the merchant does not have is a 404. */
export async function listOperations({ db, merchant, transactionId }: { db: Database; merchant: MerchantScope; transactionId: string }) {
  const [found, rows] = await db.batch([
    exists(db, merchant.id, transactionId),
    db
      .select()
      .from(operations)
      .where(and(eq(operations.merchantId, merchant.id), eq(operations.transactionId, transactionId)))
      .orderBy(asc(operations.createdAt), asc(operations.id)),
  ]);
  if (found.length === 0) throw notFound(transactionId);
  return {
    transaction_id: transactionId,
    operations: rows.map((op) => ({
      id: op.id,
      type: op.type,
      amount: op.amount,
      currency: op.currency,
      is_attempt: op.isAttempt,
      has_failed: op.hasFailed,
      is_accountable: op.isAccountable,
      gateway_operation_id: op.gatewayOperationId,
      error_code: op.errorCode,
      error_message: op.errorMessage,
      payment_type: op.paymentType,
      metadata: op.metadata,
      created_at: op.createdAt,
    })),
  };
}

/**
 * The Smart Router events applied to the transaction (outcome `applied`, or `stale` when a newer snapshot was already
 * stored), oldest first by fired_at; pending, rejected and ignored deliveries are not part of its history.
 */
export async function listAppliedEvents({ db, merchant, transactionId }: { db: Database; merchant: MerchantScope; transactionId: string }) {
  const [found, rows] = await db.batch([
    exists(db, merchant.id, transactionId),
    db
      .select()
      .from(events)
      .where(
        and(eq(events.merchantId, merchant.id), eq(events.transactionId, transactionId), inArray(events.outcome, ["applied", "stale"])),
      )
      .orderBy(asc(events.firedAt), asc(events.id)),
  ]);
  if (found.length === 0) throw notFound(transactionId);
  return {
    transaction_id: transactionId,
    events: rows.flatMap((event) =>
      event.outcome === "applied" || event.outcome === "stale"
        ? [
            {
              id: event.id,
              name: event.name,
              fired_at: event.firedAt,
              outcome: event.outcome,
              deliveries: event.deliveries,
              first_received_at: event.firstReceivedAt,
              processed_at: event.processedAt,
            },
          ]
        : [],
    ),
  };
}
