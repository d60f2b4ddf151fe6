import { and, eq, isNotNull, lte, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { endpointMessages, endpoints } from "../db/schema";

/** A claimed message is left alone by other consumers for this long: one sender per lane at a time. */
export const LANE_LEASE_MS = 60_000;

/** A transaction's messages to one endpoint: they go out one after another, in `position` order. */
export interface Lane {
  merchantId: string;
  endpointId: string;
  transactionId: string;
}

export type MessageRow = typeof endpointMessages.$inferSelect;

/**
 * Takes the lease of the lane's head (its pending message of lowest position) when it is due and not leased, counting
 * the attempt; compare-and-set in one statement, so a message is never sent while an earlier one of its lane is pending
 * and never by two consumers at once. Null when the lane has nothing to send now.
 */
export async function claimHead({ db, lane, now }: { db: Database; lane: Lane; now: number }): Promise<MessageRow | null> {
  const at = new Date(now).toISOString();
  const head = sql`(SELECT h.seq FROM ${endpointMessages} AS h
    WHERE h.endpoint_id = ${lane.endpointId} AND h.transaction_id = ${lane.transactionId} AND h.status = 'pending'
    ORDER BY h.position LIMIT 1)`;
  const row = await db
    .update(endpointMessages)
    .set({
      attempts: sql`${endpointMessages.attempts} + 1`,
      firstAttemptAt: sql`coalesce(${endpointMessages.firstAttemptAt}, ${at})`,
      leaseUntil: new Date(now + LANE_LEASE_MS).toISOString(),
    })
    .where(
      and(
        sql`${endpointMessages.seq} = ${head}`,
        lte(endpointMessages.nextAttemptAt, at),
        sql`(${endpointMessages.leaseUntil} IS NULL OR ${endpointMessages.leaseUntil} < ${at})`,
      ),
    )
    .returning()
    .get();
  return row ?? null;
}

/** What one attempt came to, as the message row keeps it (a status, never a body). */
export interface AttemptResult {
  httpStatus: number | null;
  error: string | null;
}

/** The statements that settle a delivered message and clear its endpoint's failing streak, for one D1 batch. */
export function markDelivered({ db, message, result, now }: { db: Database; message: MessageRow; result: AttemptResult; now: number }) {
  const at = new Date(now).toISOString();
  return [
    db
      .update(endpointMessages)
      .set({ status: "delivered", deliveredAt: at, leaseUntil: null, lastHttpStatus: result.httpStatus, lastError: null })
      .where(eq(endpointMessages.seq, message.seq)),
    db
      .update(endpoints)
      .set({ failingSince: null })
      .where(and(eq(endpoints.id, message.endpointId), isNotNull(endpoints.failingSince))),
  ] as const;
}

/**
 * The statements of a failed attempt: the message is due again at `retryAt`, or given up for good (`retryAt` null: past
 * its horizon, so the next message of its lane goes); its endpoint's failing streak starts now if none is running.
 */
export function markFailed({
  db,
  message,
  result,
  retryAt,
  now,
}: {
  db: Database;
  message: MessageRow;
  result: AttemptResult;
  retryAt: number | null;
  now: number;
}) {
  const at = new Date(now).toISOString();
  const settle = retryAt === null ? { status: "failed" as const } : { nextAttemptAt: new Date(retryAt).toISOString() };
  return [
    db
      .update(endpointMessages)
      .set({ ...settle, leaseUntil: null, lastHttpStatus: result.httpStatus, lastError: result.error })
      .where(eq(endpointMessages.seq, message.seq)),
    db
      .update(endpoints)
      .set({ failingSince: sql`coalesce(${endpoints.failingSince}, ${at})` })
      .where(eq(endpoints.id, message.endpointId)),
  ] as const;
}

/**
 * Disables an enabled endpoint that has answered nothing but failures since `failingBefore` or earlier (compare-and-set:
 * a 2xx meanwhile cleared the streak, a merchant's pause is kept). Answers whether this call disabled it.
 */
export async function disableIfFailing({
  db,
  endpointId,
  failingBefore,
  now,
}: {
  db: Database;
  endpointId: string;
  failingBefore: number;
  now: number;
}): Promise<boolean> {
  const row = await db
    .update(endpoints)
    .set({ status: "disabled", disabledAt: new Date(now).toISOString(), updatedAt: new Date(now).toISOString() })
    .where(
      and(
        eq(endpoints.id, endpointId),
        eq(endpoints.status, "enabled"),
        lte(endpoints.failingSince, new Date(failingBefore).toISOString()),
      ),
    )
    .returning({ id: endpoints.id })
    .get();
  return row !== undefined;
}
