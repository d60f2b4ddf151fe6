import { and, eq, isNull, lt, or, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { servedHere } from "../db/fence";
import { fulfillments } from "../db/schema";

/** A claimed delivery is left alone by other consumers for this long: one sender at a time. */
export const LEASE_MS = 60_000;

/** One outbox row: the notification of a merchant's captured transaction. */
export interface FulfillmentKey {
  merchantId: string;
  transactionId: string;
}

export type FulfillmentRow = typeof fulfillments.$inferSelect;

/** What claiming a delivery came to: the row to send, another consumer's lease, or a row no longer pending. */
export type Claim = { kind: "claimed"; row: FulfillmentRow } | { kind: "busy" } | { kind: "settled" };

const rowIs = ({ merchantId, transactionId }: FulfillmentKey) => [
  eq(fulfillments.merchantId, merchantId),
  eq(fulfillments.transactionId, transactionId),
];

/** Takes the lease of a pending row with compare-and-set (counting the attempt); else tells busy from settled. */
export async function claimFulfillment({ db, now, ...key }: { db: Database; now: Date } & FulfillmentKey): Promise<Claim> {
  const row = await db
    .update(fulfillments)
    .set({ attempts: sql`${fulfillments.attempts} + 1`, leaseUntil: new Date(now.getTime() + LEASE_MS).toISOString() })
    .where(
      and(
        ...rowIs(key),
        eq(fulfillments.status, "pending"),
        or(isNull(fulfillments.leaseUntil), lt(fulfillments.leaseUntil, now.toISOString())),
      ),
    )
    .returning()
    .get();
  if (row) return { kind: "claimed", row };
  const current = await db
    .select({ status: fulfillments.status })
    .from(fulfillments)
    .where(and(...rowIs(key)))
    .get();
  return current?.status === "pending" ? { kind: "busy" } : { kind: "settled" };
}

/**
 * The update that marks a row delivered and ends its lease. It is also the delivering attempt's record (0028): the
 * merchant's status is kept on the row, and the timeline shows the attempt from it.
 */
export function markFulfillmentDelivered({ db, httpStatus, ...key }: { db: Database; httpStatus: number } & FulfillmentKey) {
  return db
    .update(fulfillments)
    .set({ status: "delivered", deliveredAt: new Date().toISOString(), deliveredHttpStatus: httpStatus, leaseUntil: null, lastError: null })
    .where(and(...rowIs(key)));
}

/** The update that ends a failed attempt's lease with its error, the row still pending; to run with the attempt's record. */
export function releaseFulfillment({ db, error, ...key }: { db: Database; error: string } & FulfillmentKey) {
  return db
    .update(fulfillments)
    .set({ leaseUntil: null, lastError: error })
    .where(and(...rowIs(key)));
}

/** Gives a pending row up for good (past its retry horizon, or dead-lettered); answers its last error, if it was pending. */
export async function failFulfillment({ db, ...key }: { db: Database } & FulfillmentKey) {
  return (
    db
      .update(fulfillments)
      // A new failure: an acknowledgement of an earlier one (before a redrive) does not cover it.
      .set({ status: "failed", leaseUntil: null, failureAcknowledgedAt: null })
      .where(and(...rowIs(key), eq(fulfillments.status, "pending")))
      .returning({ lastError: fulfillments.lastError })
      .get()
  );
}

/** Makes a failed row pending again, its lease cleared, for a redriven nudge to deliver. */
export async function reopenFulfillment({ db, ...key }: { db: Database } & FulfillmentKey) {
  await db
    .update(fulfillments)
    .set({ status: "pending", leaseUntil: null })
    .where(and(...rowIs(key), eq(fulfillments.status, "failed")));
}

const IS_PENDING = sql`${fulfillments.status} = 'pending'`;

/**
 * Marks pending rows never attempted, requested before `requestedBefore` and not marked since `markedBefore`, oldest
 * request first (at most `limit`): `lease_until` = `now`, a lease already over, so a consumer still claims them. One
 * statement, so an overlapping run cannot mark the same rows. Answers the rows marked.
 */
export async function markStalledFulfillments(input: StalledQuery): Promise<FulfillmentKey[]> {
  return markStalledQuery(input);
}

interface StalledQuery {
  db: Database;
  now: number;
  requestedBefore: number;
  markedBefore: number;
  limit: number;
}

/** The statement of `markStalledFulfillments` (its plan is tested: the pending rows come from `fulfillments_pending`). */
export function markStalledQuery({ db, now, requestedBefore, markedBefore, limit }: StalledQuery) {
  const stalled = db
    .select({ merchantId: fulfillments.merchantId, transactionId: fulfillments.transactionId })
    .from(fulfillments)
    .where(
      and(
        // A literal, as `fulfillments_pending`'s WHERE term: SQLite uses a partial index only for a term it can match.
        IS_PENDING,
        // Never attempted: its nudge was lost. Attempted rows have a queue message retrying them already.
        eq(fulfillments.attempts, 0),
        lt(fulfillments.requestedAt, new Date(requestedBefore).toISOString()),
        or(isNull(fulfillments.leaseUntil), lt(fulfillments.leaseUntil, new Date(markedBefore).toISOString())),
        // A merchant not served here (db/fence.ts) is its other shard's to nudge.
        servedHere(fulfillments.merchantId),
      ),
    )
    .orderBy(fulfillments.requestedAt)
    .limit(limit);
  return db
    .update(fulfillments)
    .set({ leaseUntil: new Date(now).toISOString() })
    .where(sql`(${fulfillments.merchantId}, ${fulfillments.transactionId}) IN ${stalled}`)
    .returning({ merchantId: fulfillments.merchantId, transactionId: fulfillments.transactionId });
}
