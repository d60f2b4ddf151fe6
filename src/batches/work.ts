import { and, eq, inArray, sql } from "drizzle-orm";
import { type BatchStatement, inList } from "../db/bulk";
import type { Database } from "../db/client";
import { batches, batchUnits, merchants, reconciliationRuns, transactions } from "../db/schema";
import type { AppConfig, AppEnv } from "../env";
import { fulfillmentStatusFor } from "../fulfillment/policy";
import { log } from "../lib/log";
import { parseOrDeadLetter } from "../queue/dead-letters";
import { tryLater } from "../queue/retry";
import { sendAll } from "../queue/send";
import type { SmartRouterClient, TransactionRead } from "../smart-router/client";
import { SmartRouterError } from "../smart-router/errors";
import { smartRouterFor } from "../smart-router/for-merchant";
import { applySnapshots } from "../transactions/apply";
import { type BatchMessage, batchMessage, chunk, type RefreshMessage } from "./messages";

interface Progress {
  total: number;
  done: number;
  failed: number;
  apiCalls: number;
}

interface UnitResult {
  snapshots: TransactionRead[];
  /** Ids Smart Router refused for good (unknown, or the merchant's key refused): no use asking again right away. */
  refused: string[];
  followUps: BatchMessage[];
  /** Set when Smart Router or our limiter asked us to wait: the follow-ups go out with this delay. */
  retryAfterMs: number | null;
}

/** Unit not done before: guards every counter so a redelivered unit moves nothing twice. */
const unitIsNew = (unitId: string) => sql`NOT EXISTS (SELECT 1 FROM ${batchUnits} WHERE ${batchUnits.unitId} = ${unitId})`;

/** Walks one page of `GET /transactions` newest first; keeps what lies in the range and queues the next page while the walk is still inside it. */
async function syncPage(
  client: SmartRouterClient,
  work: Extract<BatchMessage, { kind: "sync_page" }>,
  range: { after: number; before: number },
  progress: Progress,
): Promise<UnitResult> {
  const { transactions, hasMore, readAt } = await client.listTransactions({
    limit: 100,
    order: "desc",
    startAfter: work.start_after ?? undefined,
  });
  const inRange = transactions.filter((t) => {
    const created = Date.parse(t.created_at);
    return created >= range.after && created < range.before;
  });
  const complete = inRange.filter((t) => Array.isArray(t.operations));
  // A list answer without operations cannot be ordered against webhooks: refresh those one by one.
  const followUps: BatchMessage[] = chunk(inRange.filter((t) => !Array.isArray(t.operations)).map((t) => t.id)).map((ids, index) => ({
    v: 1,
    kind: "refresh",
    unit_id: `${work.unit_id}/r${index}`,
    batch_id: work.batch_id,
    run_id: null,
    merchant_id: work.merchant_id,
    transaction_ids: ids,
  }));
  const last = transactions.at(-1);
  if (hasMore && last && Date.parse(last.created_at) >= range.after) {
    followUps.push({ ...work, unit_id: `${work.unit_id}/n`, start_after: last.id });
  }
  progress.total += inRange.length;
  progress.done += complete.length;
  return { snapshots: complete.map((transaction) => ({ transaction, readAt })), refused: [], followUps, retryAfterMs: null };
}

/** Refreshes transactions one by one; at the first rate limit or outage the rest goes back to the queue with a delay. */
async function refresh(client: SmartRouterClient, work: RefreshMessage, progress: Progress): Promise<UnitResult> {
  const snapshots: TransactionRead[] = [];
  const refused: string[] = [];
  for (const [index, transactionId] of work.transaction_ids.entries()) {
    try {
      snapshots.push(await client.fetchTransaction(transactionId));
      progress.done += 1;
    } catch (error) {
      if (error instanceof SmartRouterError && error.retryable) {
        const rest = { ...work, unit_id: `${work.unit_id}/+${index}`, transaction_ids: work.transaction_ids.slice(index) };
        return { snapshots, refused, followUps: [rest], retryAfterMs: error.retryAfterMs ?? 1_000 };
      }
      progress.failed += 1;
      refused.push(transactionId);
      log("warn", "batch.refresh_failed", { merchant_id: work.merchant_id, transaction_id: transactionId, error: String(error) });
    }
  }
  return { snapshots, refused, followUps: [], retryAfterMs: null };
}

/** Runs one unit of batch work exactly once in effect: follow-ups are queued before the commit, counters move with it. */
async function runUnit(work: BatchMessage, env: AppEnv, db: Database, config: AppConfig): Promise<void> {
  const now = new Date().toISOString();
  const done = await db.select().from(batchUnits).where(eq(batchUnits.unitId, work.unit_id)).get();
  const merchant = await db.select().from(merchants).where(eq(merchants.id, work.merchant_id)).get();
  if (done || !merchant) return;

  let range = { after: Number.NaN, before: Number.NaN };
  if (work.batch_id) {
    const row = await db.select().from(batches).where(eq(batches.id, work.batch_id)).get();
    if (!row || row.merchantId !== merchant.id || (row.status !== "queued" && row.status !== "running")) return;
    const params = row.params as { created_after?: string; created_before?: string };
    range = { after: Date.parse(params.created_after ?? ""), before: Date.parse(params.created_before ?? "") };
    if (row.status === "queued") {
      await db
        .update(batches)
        .set({ status: "running", startedAt: now })
        .where(and(eq(batches.id, row.id), eq(batches.status, "queued")));
    }
  }

  const progress: Progress = { total: 0, done: 0, failed: 0, apiCalls: 0 };
  const client = await smartRouterFor(env, config, merchant, "batch", () => {
    progress.apiCalls += 1;
  });
  const result = work.kind === "sync_page" ? await syncPage(client, work, range, progress) : await refresh(client, work, progress);

  if (result.followUps.length > 0) {
    const delaySeconds = result.retryAfterMs === null ? 0 : Math.max(1, Math.ceil(result.retryAfterMs / 1000));
    await sendAll(env.BATCHES, result.followUps, delaySeconds);
  }

  const extra: BatchStatement[] = [];
  if (work.batch_id) {
    extra.push(
      db
        .update(batches)
        .set({
          total: sql`${batches.total} + ${progress.total}`,
          done: sql`${batches.done} + ${progress.done}`,
          failed: sql`${batches.failed} + ${progress.failed}`,
          apiCalls: sql`${batches.apiCalls} + ${progress.apiCalls}`,
          outstanding: sql`${batches.outstanding} + ${result.followUps.length - 1}`,
        })
        .where(and(eq(batches.id, work.batch_id), unitIsNew(work.unit_id))),
    );
  }
  // Reconciliation leaves what it looked at alone for a while, found or refused, so a record Smart Router does not know
  // is asked about once per window, not on every cron run.
  const looked = [...result.snapshots.map((read) => read.transaction.id), ...result.refused];
  if (work.kind === "refresh" && work.run_id && looked.length > 0) {
    extra.push(
      db
        .update(transactions)
        .set({ reconciledAt: work.as_of ?? now })
        .where(and(eq(transactions.merchantId, merchant.id), inList(transactions.id, looked))),
    );
  }
  extra.push(db.insert(batchUnits).values({ unitId: work.unit_id, batchId: work.batch_id, finishedAt: now }).onConflictDoNothing());
  const applied = await applySnapshots(db, {
    snapshots: result.snapshots.map((read) => ({
      merchantId: merchant.id,
      snapshot: read.transaction,
      source: { kind: "read", readAt: read.readAt },
    })),
    extra,
    fulfillment: (_merchantId, captured) => fulfillmentStatusFor(merchant, captured),
    now,
  });

  if (applied.newFulfillments.length > 0) {
    await sendAll(env.FULFILLMENTS, applied.newFulfillments);
  }
  if (work.kind === "refresh" && work.run_id) {
    await db
      .update(reconciliationRuns)
      .set({
        refreshed: sql`${reconciliationRuns.refreshed} + ${result.snapshots.length}`,
        fixed: sql`${reconciliationRuns.fixed} + ${applied.changedTransactions}`,
        lastUpdateAt: now,
      })
      .where(eq(reconciliationRuns.id, work.run_id));
  }
  if (work.batch_id) {
    await db
      .update(batches)
      .set({ status: "completed", finishedAt: new Date().toISOString() })
      .where(and(eq(batches.id, work.batch_id), eq(batches.outstanding, 0), inArray(batches.status, ["queued", "running"])));
  }
}

/**
 * Consumes batch work (sync pages and refreshes) in the batch lane: every Smart Router call is paced so business traffic
 * keeps its share, results go through the same state machine as webhooks, and waiting is done by the queue, not the Worker.
 */
export async function consumeBatchWork(batch: MessageBatch<unknown>, env: AppEnv, db: Database, config: AppConfig): Promise<void> {
  for (const message of batch.messages) {
    const work = await parseOrDeadLetter(db, batch.queue, message, batchMessage);
    if (!work) continue;
    try {
      await runUnit(work, env, db, config);
      message.ack();
    } catch (error) {
      log("warn", "batch.unit_failed", {
        unit_id: work.unit_id,
        merchant_id: work.merchant_id,
        error: String(error),
        attempts: message.attempts,
      });
      await tryLater(env.BATCHES, [{ message, error }]);
    }
  }
}
