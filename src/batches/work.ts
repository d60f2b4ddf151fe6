import { and, eq, inArray, isNull, sql } from "drizzle-orm";
import { type BatchStatement, inList } from "../db/bulk";
import type { Database } from "../db/client";
import { safeErrorMessage } from "../db/errors";
import { batches, batchUnits, merchants, nowIso, reconciliationRuns, transactions } from "../db/schema";
import type { AppConfig, AppEnv } from "../env";
import { fulfillmentStatusFor } from "../fulfillment/policy";
import { log } from "../lib/log";
import { smartRouterFor } from "../merchants/smart-router";
import { BATCH_UNIT_RETRY, policyDelaySeconds } from "../queue/backoff";
import type { BatchLaneInput } from "../queue/consumer";
import { storeDeadLetter } from "../queue/dead-letters";
import { type BatchMessage, chunk, QUEUES, type RefreshMessage, restOf, type UnitMessage } from "../queue/messages";
import { postpone } from "../queue/retry";
import { sendAll } from "../queue/send";
import type { SmartRouterClient, TransactionRead } from "../smart-router/client";
import { SmartRouterError } from "../smart-router/errors";
import { applySnapshots } from "../transactions/apply";
import { sendLaneNudges } from "../transactions/stream";
import { failBatch, failMerchantBatches } from "./batches";

interface Progress {
  total: number;
  done: number;
  failed: number;
  apiCalls: number;
}

interface UnitResult {
  snapshots: TransactionRead[];
  /** Ids Smart Router answered with an error not worth retrying (e.g. unknown: 404); a refused key throws instead. */
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
      log("warn", "batch.refresh_failed", { merchant_id: work.merchant_id, transaction_id: transactionId, error: safeErrorMessage(error) });
    }
  }
  return { snapshots, refused, followUps: [], delaySeconds: 0 };
}

interface UnitScope {
  merchant: typeof merchants.$inferSelect;
  /** The batch's created-at range for a sync page (NaN for refreshes). */
  range: { after: number; before: number };
}

/** Runs one unit of batch work exactly once in effect: follow-ups are queued before the commit, counters move with it. */
export async function runUnit({ work, env, db, config }: BatchLaneInput<UnitMessage>): Promise<void> {
  const now = new Date().toISOString();
  const scope = await openUnit(db, work, now);
  if (!scope) return;
  const progress: Progress = { total: 0, done: 0, failed: 0, apiCalls: 0 };
  const result = await readUnit(env, config, scope, work, progress);
  if (result.followUps.length > 0) await sendAll(env.BATCHES, result.followUps, result.delaySeconds);
  const applied = await applySnapshots({
    db,
    snapshots: result.snapshots.map((read) => ({
      merchantId: scope.merchant.id,
      snapshot: read.transaction,
      source: { kind: "read", readAt: read.readAt },
    })),
    extra: unitStatements(db, work, scope.merchant.id, progress, result, now),
    fulfillment: (_merchantId, captured) => fulfillmentStatusFor(scope.merchant, captured),
    now,
  });
  if (applied.newFulfillments.length > 0) await sendAll(env.FULFILLMENTS, applied.newFulfillments);
  await sendLaneNudges(env.ENDPOINT_MESSAGES, applied.endpointLanes);
  await countReconciliation(db, work, result.snapshots.length, applied.changedTransactions, now);
}

/**
 * The merchant and range of a unit still to do, its batch marked running; null when there is nothing to do: the unit
 * is done, its merchant or batch is gone or finished, or Smart Router refuses the merchant's key (its batch fails).
 */
async function openUnit(db: Database, work: UnitMessage, now: string): Promise<UnitScope | null> {
  const done = await db.select().from(batchUnits).where(eq(batchUnits.unitId, work.unit_id)).get();
  const merchant = await db.select().from(merchants).where(eq(merchants.id, work.merchant_id)).get();
  if (done || !merchant) return null;
  if (merchant.smartRouterKeyRefusedAt) {
    // Batch work stops while Smart Router refuses the merchant's key; PATCHing the key clears the mark.
    if (work.batch_id) await failBatch({ db, batchId: work.batch_id, reason: keyRefusedReason(merchant.smartRouterKeyRefusedReason) });
    return null;
  }
  if (!work.batch_id) return { merchant, range: { after: Number.NaN, before: Number.NaN } };
  const row = await db.select().from(batches).where(eq(batches.id, work.batch_id)).get();
  if (!row || row.merchantId !== merchant.id || (row.status !== "queued" && row.status !== "running")) return null;
  if (row.status === "queued") {
    await db
      .update(batches)
      .set({ status: "running", startedAt: now })
      .where(and(eq(batches.id, row.id), eq(batches.status, "queued")));
  }
  const params = row.params as { created_after?: string; created_before?: string };
  return { merchant, range: { after: Date.parse(params.created_after ?? ""), before: Date.parse(params.created_before ?? "") } };
}

/** Reads the unit's transactions from Smart Router in the batch lane, counting the calls. */
async function readUnit(env: AppEnv, config: AppConfig, scope: UnitScope, work: UnitMessage, progress: Progress): Promise<UnitResult> {
  const client = await smartRouterFor(env, config, scope.merchant, "batch", () => {
    progress.apiCalls += 1;
  });
  return work.kind === "sync_page"
    ? await syncPage(client, work, scope.range, progress)
    : await refresh(client, work, progress, config.RETRY_SCHEDULE_SCALE);
}

/** What commits with the unit's records: its batch's counters and completion, reconciliation stamps, the unit's mark. */
function unitStatements(
  db: Database,
  work: UnitMessage,
  merchantId: string,
  progress: Progress,
  result: UnitResult,
  now: string,
): BatchStatement[] {
  const statements: BatchStatement[] = [];
  if (work.batch_id) {
    statements.push(
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
    statements.push(
      db
        .update(transactions)
        .set({ reconciledAt: work.as_of ?? now })
        .where(and(eq(transactions.merchantId, merchantId), inList(transactions.id, looked))),
    );
  }
  statements.push(db.insert(batchUnits).values({ unitId: work.unit_id, batchId: work.batch_id, finishedAt: now }).onConflictDoNothing());
  return statements;
}

/** A reconciliation refresh counts what it refreshed and fixed on its run. */
async function countReconciliation(db: Database, work: UnitMessage, refreshed: number, fixed: number, now: string): Promise<void> {
  if (work.kind !== "refresh" || !work.run_id) return;
  await db
    .update(reconciliationRuns)
    .set({
      refreshed: sql`${reconciliationRuns.refreshed} + ${refreshed}`,
      fixed: sql`${reconciliationRuns.fixed} + ${fixed}`,
      lastUpdateAt: now,
    })
    .where(eq(reconciliationRuns.id, work.run_id));
}

const keyRefusedReason = (detail: string | null) =>
  `Smart Router refused the merchant's key${detail ? ` (${detail})` : ""}; batch work resumes once the key is updated`;

/**
 * Puts a unit that failed back under the batch-unit policy; past its horizon it becomes a dead letter and fails its
 * batch, so the merchant sees why instead of a batch `running` for ever.
 */
export async function postponeUnit({
  env,
  db,
  config,
  message,
  work: unit,
  error,
}: BatchLaneInput<UnitMessage> & { message: Message<unknown>; error: unknown }) {
  log("warn", "batch.unit_failed", {
    unit_id: unit.unit_id,
    merchant_id: unit.merchant_id,
    error: safeErrorMessage(error),
    attempt: unit.attempt ?? 0,
  });
  await postpone(env.BATCHES, [{ message, body: unit, error }], {
    policy: BATCH_UNIT_RETRY,
    scale: config.RETRY_SCHEDULE_SCALE,
    now: Date.now(),
    deadLetter: async ({ message: failed, body }, reason) => {
      await storeDeadLetter({ db, id: failed.id, queue: QUEUES.batches, body, error: reason, attempts: body.attempt ?? 0 });
      if (body.batch_id) await failBatch({ db, batchId: body.batch_id, reason });
    },
  });
}

/**
 * Records that Smart Router refused the merchant's key (logged at error, shown on `GET /admin/merchants/{id}`) and fails
 * its open batches with that reason; its batch work, reconciliation and backstop stop until the key is PATCHed.
 */
export async function refuseMerchantKey({ db, merchantId, detail }: { db: Database; merchantId: string; detail: string }): Promise<void> {
  log("error", "merchant.key_refused", { merchant_id: merchantId, detail });
  await db.batch([
    db
      .update(merchants)
      .set({ smartRouterKeyRefusedAt: new Date().toISOString(), smartRouterKeyRefusedReason: detail })
      .where(and(eq(merchants.id, merchantId), isNull(merchants.smartRouterKeyRefusedAt))),
    failMerchantBatches({ db, merchantId, reason: keyRefusedReason(detail) }),
  ]);
}
