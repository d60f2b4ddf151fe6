import { and, desc, eq, gte, isNull, type SQL } from "drizzle-orm";
import { z } from "zod";
import { inList } from "../db/bulk";
import type { Database } from "../db/client";
import { afterRow } from "../db/keyset";
import type { DeadLetterRow } from "../db/rows";
import { deadLetters } from "../db/schema";
import { databaseFor, mergedRows, newestFirst, shardDatabases } from "../db/shards";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { reopenFulfillment } from "../fulfillment/outbox";
import { decodePageCursor, keysetPage } from "../lib/cursor";
import { QUEUES } from "../queue/messages";

const deadLetterCursor = z.strictObject({ c: z.string().min(1).max(64), i: z.string().min(1).max(200) });

/**
 * Dead letters not yet redriven, newest first, of every shard or of one merchant (its shard); keyset pages of `limit`
 * with a cursor.
 */
export async function listDeadLetters({
  env,
  merchantId,
  cursor,
  limit = 100,
}: {
  env: AppEnv;
  merchantId?: string;
  cursor?: string;
  limit?: number;
}) {
  const conditions: SQL[] = [isNull(deadLetters.redrivenAt)];
  if (merchantId) conditions.push(eq(deadLetters.merchantId, merchantId));
  if (cursor !== undefined) {
    const after = decodePageCursor(cursor, deadLetterCursor);
    conditions.push(afterRow("desc", [deadLetters.createdAt, deadLetters.id], [after.c, after.i]));
  }
  const rows = await mergedRows(
    merchantId ? [await databaseFor(env, merchantId)] : shardDatabases(env),
    (db) =>
      db
        .select()
        .from(deadLetters)
        .where(and(...conditions))
        .orderBy(desc(deadLetters.createdAt), desc(deadLetters.id))
        .limit(limit + 1),
    (a, b) => newestFirst([a.createdAt, a.id], [b.createdAt, b.id]),
  );
  const { page, nextCursor } = keysetPage(rows, limit, (row) => ({ c: row.createdAt, i: row.id }));
  return { dead_letters: page.map(presentDeadLetter), next_cursor: nextCursor };
}

/** A dead letter as `GET /admin/dead-letters` shows it. */
export const presentDeadLetter = (row: DeadLetterRow) => ({
  id: row.id,
  queue: row.queue,
  merchant_id: row.merchantId,
  body: row.body,
  error: row.error,
  attempts: row.attempts,
  created_at: row.createdAt,
});

/** A redriven body starts a fresh retry horizon: its retry state is dropped (a webhook's horizon counts from now). */
function freshBody(queue: string, body: Record<string, unknown>): Record<string, unknown> {
  const { attempt: _attempt, first_attempt_at: _first, ...rest } = body;
  return queue === QUEUES.webhooks ? { ...rest, first_attempt_at: new Date().toISOString() } : rest;
}

/** Sends dead letters back through their queue and marks them redriven; a fulfilment goes back to pending first. */
export async function redriveDeadLetters({
  db,
  env,
  selection,
}: {
  db: Database;
  env: AppEnv;
  selection: { ids?: string[]; merchant?: string; queue?: string; since?: string };
}) {
  const conditions: SQL[] = [isNull(deadLetters.redrivenAt)];
  if (selection.ids) conditions.push(inList(deadLetters.id, selection.ids));
  if (selection.merchant) conditions.push(eq(deadLetters.merchantId, selection.merchant));
  if (selection.queue) conditions.push(eq(deadLetters.queue, selection.queue));
  if (selection.since) conditions.push(gte(deadLetters.createdAt, selection.since));
  const rows = await db
    .select()
    .from(deadLetters)
    .where(and(...conditions))
    .limit(100);
  const queues: Record<string, Queue> = {
    [QUEUES.webhooks]: env.WEBHOOKS,
    [QUEUES.fulfillments]: env.FULFILLMENTS,
    [QUEUES.batches]: env.BATCHES,
  };
  const redriven: string[] = [];
  const skipped: { id: string; reason: string }[] = [];
  for (const row of rows) {
    const queue = queues[row.queue];
    if (!queue) {
      skipped.push({ id: row.id, reason: `no queue ${row.queue}` });
      continue;
    }
    const body = row.body as Record<string, unknown>;
    if (row.queue === QUEUES.fulfillments && typeof body.merchant_id === "string" && typeof body.transaction_id === "string") {
      await reopenFulfillment({ db, merchantId: body.merchant_id, transactionId: body.transaction_id });
    }
    try {
      await queue.send(freshBody(row.queue, body), { contentType: "json" });
    } catch {
      throw new ApiError("service_unavailable", `queue refused the redrive of ${row.id}; nothing after it was sent`, {
        "Retry-After": "30",
      });
    }
    await db.update(deadLetters).set({ redrivenAt: new Date().toISOString() }).where(eq(deadLetters.id, row.id));
    redriven.push(row.id);
  }
  return { redriven, skipped };
}

/** The admin's redrive: one merchant's dead letters on its shard, or the given ids wherever they are (every shard). */
export async function redriveFromShards({ env, selection }: { env: AppEnv; selection: { ids: string[] } | { merchant: string } }) {
  const dbs = "merchant" in selection ? [await databaseFor(env, selection.merchant)] : shardDatabases(env);
  const results = [];
  // One shard after another, so a queue that refuses stops the redrive where it is (as within one shard).
  for (const db of dbs) results.push(await redriveDeadLetters({ db, env, selection }));
  return { redriven: results.flatMap((result) => result.redriven), skipped: results.flatMap((result) => result.skipped) };
}
