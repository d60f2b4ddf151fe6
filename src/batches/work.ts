import { and, eq, inArray, isNull, sql } from "drizzle-orm";
import { type BatchStatement, inList } from "../db/bulk";
import type { Database } from "../db/client";
import { batches, batchUnits, merchants, nowIso, reconciliationRuns, transactions } from "../db/schema";
import type { AppConfig, AppEnv } from "../env";
import { fulfillmentStatusFor } from "../fulfillment/policy";
import { log } from "../lib/log";
import { BATCH_UNIT_RETRY, policyDelaySeconds } from "../queue/backoff";
import { parseOrDeadLetter, storeDeadLetter } from "../queue/dead-letters";
import { postpone } from "../queue/retry";
import { sendAll } from "../queue/send";
import { failReseal, resealPage } from "../security/reseal";
import type { SmartRouterClient, TransactionRead } from "../smart-router/client";
import { SmartRouterError } from "../smart-router/errors";
import { smartRouterFor } from "../smart-router/for-merchant";
import { applySnapshots } from "../transactions/apply";
import { failBatch, failMerchantBatches } from "./batches";
import { walkEventLog } from "./event-log";
import { type BatchMessage, batchMessage, chunk, type RefreshMessage, restOf, type UnitMessage } from "./messages";

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
  /** The delay the follow-ups go out with: 0, or the wait before the rest of a unit that stopped part-way is tried. */
  delaySeconds: number;
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
  return { snapshots: complete.map((transaction) => ({ transaction, readAt })), refused: [], followUps, delaySeconds: 0 };
}

/**
 * Refreshes transactions one by one. At the first rate limit or outage: with nothing done yet the error goes up (the
 * whole unit is postponed under the batch-unit policy); part-way, what was read commits and the rest becomes a unit of
 * its own at a deterministic split point, carrying the retry state. A refused key (401/403) always goes up.
 */
async function refresh(client: SmartRouterClient, work: RefreshMessage, progress: Progress, scale: number): Promise<UnitResult> {
  const snapshots: TransactionRead[] = [];
  const refused: string[] = [];
  for (const [index, transactionId] of work.transaction_ids.entries()) {
    try {
      snapshots.push(await client.fetchTransaction(transactionId));
      progress.done += 1;
    } catch (error) {
      if (error instanceof SmartRouterError && (error.retryable || error.kind === "authentication")) {
        if (index === 0 || error.kind === "authentication") throw error;
        const waiting = error.isLocalBackpressure;
        const attempt = (work.attempt ?? 0) + (waiting ? 0 : 1);
        const rest = { ...restOf(work, index), attempt, first_attempt_at: work.first_attempt_at ?? new Date().toISOString() };
        const delaySeconds = waiting
          ? Math.max(1, Math.ceil((error.retryAfterMs ?? 1_000) / 1000))
          : policyDelaySeconds(BATCH_UNIT_RETRY, attempt, { scale, hintMs: error.retryAfterMs });
        return { snapshots, refused, followUps: [rest], delaySeconds };
      }
      progress.failed += 1;
      refused.push(transactionId);
      log("warn", "batch.refresh_failed", { merchant_id: work.merchant_id, transaction_id: transactionId, error: String(error) });
    }
  }
  return { snapshots, refused, followUps: [], delaySeconds: 0 };
}

/** Runs one unit of batch work exactly once in effect: follow-ups are queued before the commit, counters move with it. */
async function runUnit(work: UnitMessage, env: AppEnv, db: Database, config: AppConfig): Promise<void> {
  const now = new Date().toISOString();
  const done = await db.select().from(batchUnits).where(eq(batchUnits.unitId, work.unit_id)).get();
  const merchant = await db.select().from(merchants).where(eq(merchants.id, work.merchant_id)).get();
  if (done || !merchant) return;
  if (merchant.smartRouterKeyRefusedAt) {
    // Batch work stops while Smart Router refuses the merchant's key; PATCHing the key clears the mark.
    if (work.batch_id) await failBatch(db, work.batch_id, keyRefusedReason(merchant.smartRouterKeyRefusedReason));
    return;
  }

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
  const result =
    work.kind === "sync_page"
      ? await syncPage(client, work, range, progress)
      : await refresh(client, work, progress, config.RETRY_SCHEDULE_SCALE);

  if (result.followUps.length > 0) await sendAll(env.BATCHES, result.followUps, result.delaySeconds);

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
      // Completion commits with the last unit's counters: never a finished batch still `running`, nor the reverse.
      db
        .update(batches)
        .set({ status: "completed", finishedAt: nowIso })
        .where(and(eq(batches.id, work.batch_id), eq(batches.outstanding, 0), inArray(batches.status, ["queued", "running"]))),
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
}

/** A walk of the event log that fails is tried again this many times before it waits for the next cron run. */
const WALK_RETRIES = 5;

const keyRefusedReason = (detail: string | null) =>
  `Smart Router refused the merchant's key${detail ? ` (${detail})` : ""}; batch work resumes once the key is updated`;

/**
 * Consumes batch work (sync pages, refreshes, event-log walks, re-seal pages) in the batch lane: every Smart Router call
 * is paced so business traffic keeps its share, results go through the same state machine as webhooks, and waiting is
 * done by the queue, not the Worker.
 */
export async function consumeBatchWork(batch: MessageBatch<unknown>, env: AppEnv, db: Database, config: AppConfig): Promise<void> {
  const parsed: { message: Message<unknown>; work: BatchMessage }[] = [];
  for (const message of batch.messages) {
    const work = await parseOrDeadLetter(db, batch.queue, message, batchMessage);
    if (work) parsed.push({ message, work });
  }
  const handle = async ({ message, work }: { message: Message<unknown>; work: BatchMessage }): Promise<void> => {
    try {
      if (work.kind === "event_log") await walkEventLog(env, db, config, work);
      else if (work.kind === "reseal") await resealPage(db, config, env.BATCHES, work);
      else await runUnit(work, env, db, config);
      message.ack();
    } catch (error) {
      if (work.kind !== "reseal" && error instanceof SmartRouterError && error.kind === "authentication") {
        // Not worth retrying: mark the merchant, fail its batches, stop. PATCHing the key resumes batch work.
        await refuseMerchantKey(db, work.merchant_id, `${error.status ?? 401} ${error.errorType ?? "authentication failed"}`);
        message.ack();
        return;
      }
      if (work.kind === "reseal") {
        // A page that fails (a secret no configured key opens) stops the job, saying why: nothing is half re-sealed.
        await failReseal(db, work.job_id, String(error));
        message.ack();
        return;
      }
      if (work.kind === "event_log") {
        // Our pacer's wait: go on when it says. A failure: try again soon, at most WALK_RETRIES times; after that the
        // next cron run walks again from the watermark (nothing is lost by giving up: the watermark did not move).
        const waiting = error instanceof SmartRouterError && error.isLocalBackpressure;
        const attempt = work.attempt ?? 0;
        const hintMs = error instanceof SmartRouterError ? error.retryAfterMs : null;
        if (waiting) {
          await sendAll(env.BATCHES, [work], Math.max(1, Math.ceil((hintMs ?? 1_000) / 1000)));
        } else if (attempt < WALK_RETRIES) {
          const delay = policyDelaySeconds(BATCH_UNIT_RETRY, attempt + 1, { scale: config.RETRY_SCHEDULE_SCALE, hintMs });
          await sendAll(env.BATCHES, [{ ...work, attempt: attempt + 1 }], delay);
        } else {
          log("warn", "event_log.walk_failed", { merchant_id: work.merchant_id, error: String(error), attempt });
        }
        message.ack();
        return;
      }
      const unit: UnitMessage = work;
      log("warn", "batch.unit_failed", {
        unit_id: unit.unit_id,
        merchant_id: unit.merchant_id,
        error: String(error),
        attempt: unit.attempt ?? 0,
      });
      await postpone(env.BATCHES, [{ message, body: unit, error }], {
        policy: BATCH_UNIT_RETRY,
        scale: config.RETRY_SCHEDULE_SCALE,
        now: Date.now(),
        // A unit past its horizon fails its batch: the merchant sees why instead of a batch `running` for ever.
        deadLetter: async ({ message: failed, body }, reason) => {
          await storeDeadLetter(db, { id: failed.id, queue: "smart-router-batches", body, error: reason, attempts: body.attempt ?? 0 });
          if (body.batch_id) await failBatch(db, body.batch_id, reason);
        },
      });
    }
  };
  // Walks of different merchants' event logs are independent (each project has its own pacer): side by side, so one
  // merchant's slow walk never holds up another's in the batch. Units of batch work run one after another.
  await Promise.all(parsed.filter((item) => item.work.kind === "event_log").map(handle));
  for (const item of parsed.filter((entry) => entry.work.kind !== "event_log")) await handle(item);
}

/**
 * Records that Smart Router refused the merchant's key (logged at error, shown on `GET /admin/merchants/{id}`) and fails
 * its open batches with that reason; its batch work, reconciliation and backstop stop until the key is PATCHed.
 */
export async function refuseMerchantKey(db: Database, merchantId: string, detail: string): Promise<void> {
  log("error", "merchant.key_refused", { merchant_id: merchantId, detail });
  await db.batch([
    db
      .update(merchants)
      .set({ smartRouterKeyRefusedAt: new Date().toISOString(), smartRouterKeyRefusedReason: detail })
      .where(and(eq(merchants.id, merchantId), isNull(merchants.smartRouterKeyRefusedAt))),
    failMerchantBatches(db, merchantId, keyRefusedReason(detail)),
  ]);
}
