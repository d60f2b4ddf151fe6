import { and, eq, type SQL, sql } from "drizzle-orm";
import { runBatch } from "../db/bulk";
import type { Database } from "../db/client";
import { apiKeyDirectory, merchantMoves, merchantShards } from "../db/schema";
import { bindingOf, directoryDatabase, forgetMerchantShards, measureShard, PLACEMENT_LIMIT, shardAt, shardsOf } from "../db/shards";
import type { AppConfig, AppEnv } from "../env";
import { ApiError } from "../errors";
import { log } from "../lib/log";
import { forgetWebhookCredentials } from "../merchants/credential-directory";
import type { MerchantMoveMessage } from "../queue/messages";
import { applyNextChanges, copyNextPage, countDifferences, MOVE_PAGE, type MoveEnds } from "./copy";
import { deletePass } from "./rows";

type MoveRow = typeof merchantMoves.$inferSelect;

/** The move as the admin API shows it (contract, "Shards: watch and move"). */
export const presentMove = (row: MoveRow) => ({
  id: row.id,
  merchant: row.merchantId,
  from: bindingOf(row.fromShard),
  to: bindingOf(row.toShard),
  status: row.status,
  rows_copied: row.rowsCopied,
  started_at: row.startedAt,
  finished_at: row.finishedAt,
  error: row.error,
});

/**
 * How long after the switch the source's rows stay: longer than any isolate keeps a directory entry (10 s) or a
 * shard's webhook credentials (60 s), so no read lands on a cleaned source. Scaled by RETRY_SCHEDULE_SCALE in tests.
 */
const CLEAN_AFTER_MS = 90_000;

const send = (queue: Queue, moveId: string, step: number, delaySeconds = 0) =>
  queue.send({ v: 1, kind: "merchant_move", move_id: moveId, step, shard: 0 } satisfies MerchantMoveMessage, {
    contentType: "json",
    delaySeconds,
  });

/** Whether the target can take the merchant: it answers, carries migration 0022, and is not past PLACEMENT_LIMIT. */
async function checkTarget({ db, binding, capacityBytes }: { db: Database; binding: string; capacityBytes: number }) {
  let bytes: number | undefined;
  try {
    bytes = await measureShard(db);
    await db.run(sql`SELECT 1 FROM move_progress LIMIT 1`);
  } catch {
    throw new ApiError("service_unavailable", `shard ${binding} does not answer or is not migrated; nothing was moved`, {
      "Retry-After": "60",
    });
  }
  if ((bytes ?? 0) > capacityBytes * PLACEMENT_LIMIT) {
    throw new ApiError("conflict", `shard ${binding} is past ${PLACEMENT_LIMIT * 100}% of its capacity and takes no merchant`);
  }
}

/** Starts moving a merchant to the shard bound as `to`: 404 unknown merchant, 409 same shard or a move running, target checked. */
export async function startMove({
  env,
  config,
  queue,
  merchantId,
  to,
}: {
  env: AppEnv;
  config: AppConfig;
  queue: Queue;
  merchantId: string;
  to: string;
}) {
  const directory = directoryDatabase(env);
  const index = shardsOf(env).findIndex((shard) => bindingOf(shard.index) === to);
  if (index < 0) throw new ApiError("bad_request", `to: ${to} is not a D1 shard bound to this worker`);
  const entry = await directory.select().from(merchantShards).where(eq(merchantShards.merchantId, merchantId)).get();
  if (!entry) throw new ApiError("not_found", `merchant ${merchantId} not found`);
  if (entry.shard === index) throw new ApiError("conflict", `merchant ${merchantId} is already on ${to}`);
  await checkTarget({ db: shardAt(env, index).db, binding: to, capacityBytes: config.SHARD_CAPACITY_BYTES });
  const now = new Date().toISOString();
  const id = `mov_${crypto.randomUUID().replaceAll("-", "")}`;
  const row = await directory
    .insert(merchantMoves)
    .values({ id, merchantId, fromShard: entry.shard, toShard: index, status: "copying", startedAt: now, updatedAt: now })
    .onConflictDoNothing()
    .returning()
    .get();
  if (!row) {
    const running = await directory
      .select({ id: merchantMoves.id })
      .from(merchantMoves)
      .where(and(eq(merchantMoves.merchantId, merchantId), sql`${merchantMoves.status} NOT IN ('completed', 'failed')`))
      .get();
    throw new ApiError("conflict", `merchant ${merchantId} is already moving (${running?.id ?? "a move"})`);
  }
  await send(queue, id, 0);
  return presentMove(row);
}

/** A move by id; unknown ids are a 404. */
export async function findMove({ env, moveId }: { env: AppEnv; moveId: string }) {
  const row = await directoryDatabase(env).select().from(merchantMoves).where(eq(merchantMoves.id, moveId)).get();
  if (!row) throw new ApiError("not_found", `move ${moveId} not found`);
  return presentMove(row);
}

const endsOf = (env: AppEnv, job: MoveRow): MoveEnds => ({
  moveId: job.id,
  merchantId: job.merchantId,
  source: shardAt(env, job.fromShard).db,
  target: shardAt(env, job.toShard).db,
});

/** Sets the source's mark (tracking → fenced → moved, never back); `tracking` only creates it. */
const markSource = (ends: MoveEnds, state: "tracking" | "fenced" | "moved") =>
  runBatch(ends.source.$client, [
    state === "tracking"
      ? sql`INSERT INTO move_marks (merchant_id, move_id, state) VALUES (${ends.merchantId}, ${ends.moveId}, 'tracking') ON CONFLICT DO NOTHING`
      : sql`INSERT INTO move_marks (merchant_id, move_id, state) VALUES (${ends.merchantId}, ${ends.moveId}, ${state})
      ON CONFLICT (merchant_id) DO UPDATE SET state = excluded.state WHERE move_marks.move_id = excluded.move_id`,
  ]);

/**
 * Marks the target `receiving` for this move (its scheduled work leaves the copies alone: db/fence.ts `servedHere`),
 * taking over a mark of an earlier move away from it (`moved`, which would fence the copy's writes). Idempotent. A late
 * run of a copying step could land it after the switch (or the undo) lifted it: the job, read again after the write,
 * past its switch or failed, lifts it again (the switch and the undo lift it after their compare-and-set, so of the two
 * one always sees the other).
 */
async function markReceiving(env: AppEnv, ends: MoveEnds): Promise<void> {
  await runBatch(ends.target.$client, [
    sql`INSERT INTO move_marks (merchant_id, move_id, state) VALUES (${ends.merchantId}, ${ends.moveId}, 'receiving')
      ON CONFLICT (merchant_id) DO UPDATE SET move_id = excluded.move_id, state = excluded.state WHERE move_marks.move_id <> excluded.move_id`,
  ]);
  const job = await directoryDatabase(env).select().from(merchantMoves).where(eq(merchantMoves.id, ends.moveId)).get();
  if (!job || job.switchedAt !== null || job.status === "failed") await liftReceiving(ends);
}

/** Lifts the target's `receiving` mark of this move (after its switch, or undone): its scheduled work serves the merchant. */
const liftReceiving = (ends: MoveEnds) =>
  runBatch(ends.target.$client, [
    sql`DELETE FROM move_marks WHERE merchant_id = ${ends.merchantId} AND move_id = ${ends.moveId} AND state = 'receiving'`,
  ]);

/** What a step decided: the job's new fields, statements committed on DB with its compare-and-set, and the next step's delay. */
interface Advance {
  set: Partial<MoveRow>;
  withSwitch?: SQL[];
  delaySeconds?: number;
  after?: () => Promise<void>;
}

/**
 * copying: the source is marked first (its writes logged from then on), the target marked `receiving` before any page
 * lands there; then one page of one table, or once every table is copied one page of the change log. When the log is
 * drained, the source is fenced and the move goes on to switching.
 */
async function copying(env: AppEnv, ends: MoveEnds, now: Date): Promise<Advance> {
  await markSource(ends, "tracking");
  await markReceiving(env, ends);
  const copied = await copyNextPage(ends);
  if (copied !== null) return { set: { rowsCopied: sql`${merchantMoves.rowsCopied} + ${copied}` as unknown as number } };
  const applied = await applyNextChanges(ends);
  if (applied >= MOVE_PAGE) return { set: {} };
  await markSource(ends, "fenced");
  return { set: { status: "switching", fenceStartedAt: now.toISOString() } };
}

/** Ends when the log is empty: under the fence nothing adds to it. Horizon: 10,000 pages (5 million changes), then it fails. */
async function drainChanges(ends: MoveEnds): Promise<void> {
  for (let page = 0; page < 10_000; page += 1) {
    if ((await applyNextChanges(ends)) === 0) return;
  }
  throw new Error("the change log did not drain under the fence");
}

/**
 * switching (writes fenced): the rest of the change log, then every table's count compared, then the directory names
 * the target (merchant and API keys) in the same DB batch as the job's compare-and-set; the source stays fenced (`moved`).
 */
async function switching(ends: MoveEnds, job: MoveRow, now: Date, config: AppConfig): Promise<Advance> {
  await markSource(ends, "fenced");
  await drainChanges(ends);
  const differences = await countDifferences(ends);
  if (differences.length > 0) throw new MoveRefused(`counts differ after the copy: ${differences.join(", ")}`);
  return {
    set: { status: "cleaning", fenceEndedAt: new Date().toISOString(), switchedAt: now.toISOString() },
    withSwitch: [
      sql`UPDATE ${merchantShards} SET shard = ${job.toShard} WHERE merchant_id = ${job.merchantId} AND shard = ${job.fromShard}`,
      sql`UPDATE ${apiKeyDirectory} SET shard = ${job.toShard} WHERE merchant_id = ${job.merchantId}`,
    ],
    delaySeconds: Math.ceil((CLEAN_AFTER_MS * config.RETRY_SCHEDULE_SCALE) / 1000),
    // The target's mark is lifted only after the directory names it (its own D1, so not in the switch's batch); a crash
    // before that leaves it to the cleaning's first step, which lifts it again: never before the switch, never for good.
    after: async () => {
      await markSource(ends, "moved");
      await liftReceiving(ends);
      forgetMerchantShards(job.merchantId);
      forgetWebhookCredentials();
    },
  };
}

/**
 * cleaning, once CLEAN_AFTER_MS passed since the switch: one page of every table deleted on the source (children first),
 * and the move's bookkeeping; completed when a pass finds nothing left.
 */
async function cleaning(ends: MoveEnds, job: MoveRow, now: Date, config: AppConfig): Promise<Advance> {
  const due = Date.parse(job.switchedAt ?? job.updatedAt) + CLEAN_AFTER_MS * config.RETRY_SCHEDULE_SCALE;
  await liftReceiving(ends);
  if (now.getTime() < due) return { set: {}, delaySeconds: Math.ceil((due - now.getTime()) / 1000) };
  await markSource(ends, "moved");
  let deleted = await deletePass({ db: ends.source, merchantId: ends.merchantId, limit: MOVE_PAGE });
  const [changes, maps] = await runBatch(ends.source.$client, [
    sql`DELETE FROM move_changes WHERE seq IN (SELECT seq FROM move_changes WHERE merchant_id = ${ends.merchantId} LIMIT ${MOVE_PAGE})`,
  ]).then(async (first) => [
    first[0],
    (
      await runBatch(ends.target.$client, [
        sql`DELETE FROM move_row_map WHERE (move_id, tbl, source_id) IN (SELECT move_id, tbl, source_id FROM move_row_map WHERE move_id = ${ends.moveId} LIMIT ${MOVE_PAGE})`,
      ])
    )[0],
  ]);
  deleted += (changes?.meta.changes ?? 0) + (maps?.meta.changes ?? 0);
  if (deleted > 0) return { set: {} };
  await runBatch(ends.target.$client, [sql`DELETE FROM move_progress WHERE move_id = ${ends.moveId}`]);
  return { set: { status: "completed", finishedAt: now.toISOString() } };
}

/** A move that cannot go on (before the switch): it fails, saying why. */
export class MoveRefused extends Error {}

/**
 * Whether the target's rows of the merchant are a failed move's copies: no other move of the merchant runs and the
 * directory does not name the target (a later move may have taken the merchant there; its rows are never undone).
 */
async function copiesAreStray(env: AppEnv, job: MoveRow): Promise<boolean> {
  const directory = directoryDatabase(env);
  const running = sql`${merchantMoves.status} NOT IN ('completed', 'failed')`;
  const [other, entry] = await Promise.all([
    directory
      .select({ id: merchantMoves.id })
      .from(merchantMoves)
      .where(and(eq(merchantMoves.merchantId, job.merchantId), running))
      .get(),
    directory.select({ shard: merchantShards.shard }).from(merchantShards).where(eq(merchantShards.merchantId, job.merchantId)).get(),
  ]);
  return !other && entry?.shard !== job.toShard;
}

/**
 * Undoes what a move that failed before its switch left on the shards: the source's mark goes (its writes pass again),
 * the target's `receiving` mark too, and the target's copies are deleted page by page (ends when no table has a row of
 * the merchant left there), unless they are no longer strays. Idempotent: a step still running when its move failed
 * runs it again once it sees the failure, so no late page (or late `receiving` mark) stays behind.
 */
async function undoMove(env: AppEnv, job: MoveRow): Promise<void> {
  const ends = endsOf(env, job);
  await runBatch(ends.source.$client, [sql`DELETE FROM move_marks WHERE merchant_id = ${ends.merchantId} AND move_id = ${ends.moveId}`]);
  await liftReceiving(ends);
  if (!(await copiesAreStray(env, job))) return;
  // Ends when a pass finds no row of the merchant left on the target (the merchants row goes in the last pass).
  for (let left = 1; left > 0; ) left = await deletePass({ db: ends.target, merchantId: ends.merchantId, limit: MOVE_PAGE });
  await runBatch(ends.target.$client, [
    sql`DELETE FROM move_progress WHERE move_id = ${ends.moveId}`,
    sql`DELETE FROM move_row_map WHERE move_id = ${ends.moveId}`,
  ]);
}

/**
 * Fails a move that had not switched (compare-and-set from copying or switching: a move past its switch can only go
 * forward), then undoes it. Answers whether this call failed it.
 */
async function failMove({ env, job, reason }: { env: AppEnv; job: MoveRow; reason: string }): Promise<boolean> {
  const now = new Date().toISOString();
  const failed = await directoryDatabase(env)
    .update(merchantMoves)
    .set({ status: "failed", error: reason, finishedAt: now, updatedAt: now })
    .where(and(eq(merchantMoves.id, job.id), sql`${merchantMoves.status} IN ('copying', 'switching')`))
    .returning()
    .get();
  if (!failed) return false;
  log("error", "move.failed", { move_id: job.id, merchant_id: job.merchantId, error: reason });
  await undoMove(env, job);
  return true;
}

async function advance({
  env,
  config,
  job,
  now,
  scanKeys,
}: {
  env: AppEnv;
  config: AppConfig;
  job: MoveRow;
  now: Date;
  scanKeys?: number;
}): Promise<Advance | null> {
  const ends = { ...endsOf(env, job), scanKeys };
  if (job.status === "copying") return copying(env, ends, now);
  if (job.status === "switching") return switching(ends, job, now, config);
  if (job.status === "cleaning") return cleaning(ends, job, now, config);
  return null;
}

/** The step's end on DB: its compare-and-set (on step and status), after the switch's writes it guards; answers whether it won. */
async function commitStep({ env, job, next }: { env: AppEnv; job: MoveRow; next: Advance }): Promise<boolean> {
  const directory = directoryDatabase(env);
  // The switch's writes land only with the compare-and-set they precede: never for a move failed or advanced meanwhile.
  const current = sql`EXISTS (SELECT 1 FROM ${merchantMoves} WHERE id = ${job.id} AND step = ${job.step} AND status = ${job.status})`;
  const results = await runBatch(directory.$client, [
    ...(next.withSwitch ?? []).map((statement) => sql`${statement} AND ${current}`),
    directory
      .update(merchantMoves)
      .set({ ...next.set, step: job.step + 1, updatedAt: new Date().toISOString() })
      .where(and(eq(merchantMoves.id, job.id), eq(merchantMoves.step, job.step), eq(merchantMoves.status, job.status))),
  ]);
  return (results.at(-1)?.meta.changes ?? 0) > 0;
}

/** After a step that did not advance its move: were the move failed meanwhile, what the step wrote is undone again. */
async function undoIfFailed(env: AppEnv, job: MoveRow): Promise<void> {
  const now = await directoryDatabase(env).select().from(merchantMoves).where(eq(merchantMoves.id, job.id)).get();
  if (now?.status === "failed" && now.switchedAt === null) await undoMove(env, job);
}

/**
 * Runs one step of a move: the message's step must be the job's (a duplicate of a step already taken is dropped; a
 * redelivered one whose next message may have been lost by a crash sends it again). The step's work is idempotent; its
 * end is one compare-and-set of the job's step on DB (with the directory switch, when it is the switch), and only the
 * run that wins it sends the next step. Ends at completed or failed.
 */
export async function runMoveStep({
  env,
  config,
  queue,
  message,
  attempts,
  now = new Date(),
  scanKeys,
}: {
  env: AppEnv;
  config: AppConfig;
  queue: Queue;
  message: MerchantMoveMessage;
  attempts: number;
  now?: Date;
  /** Keys a walked table's copy page reads (src/moves/copy.ts SCAN_KEYS unless a test lowers it). */
  scanKeys?: number;
}): Promise<void> {
  const job = await directoryDatabase(env).select().from(merchantMoves).where(eq(merchantMoves.id, message.move_id)).get();
  if (!job || job.status === "completed" || job.status === "failed") return;
  if (message.step !== job.step) {
    if (message.step === job.step - 1 && attempts > 1) await send(queue, job.id, job.step);
    return;
  }
  let next: Advance | null;
  try {
    next = await advance({ env, config, job, now, scanKeys });
  } catch (error) {
    if (!(error instanceof MoveRefused)) {
      await undoIfFailed(env, job);
      throw error;
    }
    await failMove({ env, job, reason: error.message });
    return;
  }
  if (!next) return;
  if (!(await commitStep({ env, job, next }))) return undoIfFailed(env, job);
  await next.after?.();
  if (next.set.status !== "completed") await send(queue, job.id, job.step + 1, next.delaySeconds ?? 0);
}

/** Notes a step's failure on its running move (log-safe text): what the cron's horizon names if the move never gets past it. */
export async function recordStepError({ env, moveId, error }: { env: AppEnv; moveId: string; error: string }): Promise<void> {
  await directoryDatabase(env)
    .update(merchantMoves)
    .set({ lastError: error.slice(0, 500) })
    .where(and(eq(merchantMoves.id, moveId), sql`${merchantMoves.status} NOT IN ('completed', 'failed')`));
}

/**
 * A running move not advanced for this long has lost its step message (dead-lettered after the queue's retries, or
 * never sent): the cron sends its current step again. Longer than any step runs and than the cleaning's wait.
 */
export const MOVE_LEASE_MS = 10 * 60_000;
/**
 * Horizon of a stuck move before its switch: not advanced for this long, it fails with its last error and its fence is
 * lifted. Past the switch a move can only go forward: it is re-sent each run with no horizon (the shards answering
 * ends it), logged at error.
 */
export const MOVE_GIVE_UP_MS = 6 * 3_600_000;
/** Stuck moves looked at per cron run (bounded work; the rest are next run's). */
const STUCK_PER_RUN = 50;

/** The cron's look at running moves (on DB): each one stuck past the lease is nudged on, or failed past the horizon. */
export async function nudgeStuckMoves({ env, queue, now }: { env: AppEnv; queue: Queue; now: number }) {
  const stuck = await directoryDatabase(env)
    .select()
    .from(merchantMoves)
    .where(
      and(
        sql`${merchantMoves.status} NOT IN ('completed', 'failed')`,
        sql`${merchantMoves.updatedAt} < ${new Date(now - MOVE_LEASE_MS).toISOString()}`,
      ),
    )
    .limit(STUCK_PER_RUN)
    .all();
  let nudged = 0;
  let failed = 0;
  for (const job of stuck) {
    const idle = now - Date.parse(job.updatedAt);
    const hours = (idle / 3_600_000).toFixed(1);
    if (idle >= MOVE_GIVE_UP_MS && job.status !== "cleaning") {
      const reason = `no progress for ${hours} h at step ${job.step} (${job.status}): ${job.lastError ?? "its step message was lost"}`;
      if (await failMove({ env, job, reason })) failed += 1;
      continue;
    }
    if (idle >= MOVE_GIVE_UP_MS) log("error", "move.stuck", { move_id: job.id, status: job.status, hours, error: job.lastError });
    await send(queue, job.id, job.step);
    nudged += 1;
  }
  return { moves_nudged: nudged, moves_failed: failed };
}
