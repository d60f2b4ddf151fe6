import { failReseal, resealPage } from "../admin/reseal";
import { retryWalk, walkEventLog } from "../backstop/event-log";
import { postponeUnit, refuseMerchantKey, runUnit } from "../batches/work";
import type { Database } from "../db/client";
import { safeErrorMessage } from "../db/errors";
import { finishReplay, replayPage } from "../endpoints/replay";
import type { AppConfig, AppEnv } from "../env";
import { log } from "../lib/log";
import { recordStepError, runMoveStep } from "../moves/moves";
import type { ConsumerInput } from "../queue/consumer";
import { parseOrDeadLetter } from "../queue/dead-letters";
import { type BatchMessage, batchMessage } from "../queue/messages";
import { SmartRouterError } from "../smart-router/errors";

interface BatchContext {
  env: AppEnv;
  db: Database;
  config: AppConfig;
}

interface Work {
  message: Message<unknown>;
  work: BatchMessage;
}

/**
 * Consumes batch work (sync pages, refreshes, event-log walks, re-seal pages) in the batch lane: every Smart Router call
 * is paced so business traffic keeps its share, results go through the same state machine as webhooks, and waiting is
 * done by the queue, not the Worker.
 */
export async function consumeBatchWork({ batch, env, db, config }: ConsumerInput): Promise<void> {
  const context: BatchContext = { env, db, config };
  const parsed: Work[] = [];
  for (const message of batch.messages) {
    const work = await parseOrDeadLetter(db, batch.queue, message, batchMessage);
    if (work) parsed.push({ message, work });
  }
  // Walks of different merchants' event logs are independent (each project has its own pacer): side by side, so one
  // merchant's slow walk never holds up another's in the batch. Units of batch work run one after another.
  await Promise.all(parsed.filter((item) => item.work.kind === "event_log").map((item) => handle(item, context)));
  for (const item of parsed.filter((entry) => entry.work.kind !== "event_log")) await handle(item, context);
}

/** Runs one piece of work and settles its message: acked when done, or as its kind's failure policy says. */
async function handle({ message, work }: Work, context: BatchContext): Promise<void> {
  if (work.kind === "merchant_move") {
    const { env, config } = context;
    // Every step is idempotent: a failed one is simply run again (a shard that fails waits for it).
    await runMoveStep({ env, config, queue: env.BATCHES, message: work, attempts: message.attempts }).then(
      () => message.ack(),
      async (error: unknown) => {
        log("warn", "move.step_failed", { move_id: work.move_id, step: work.step, error: safeErrorMessage(error) });
        message.retry({ delaySeconds: 5 });
        // Kept on the move for the cron's horizon (nudgeStuckMoves); DB failing too only loses the note.
        await recordStepError({ env, moveId: work.move_id, error: safeErrorMessage(error) }).catch(() => undefined);
      },
    );
    return;
  }
  try {
    await run(work, context);
    message.ack();
  } catch (error) {
    await settleFailure({ message, work }, error, context);
  }
}

/** The work of one message, by its kind. */
async function run(work: Exclude<BatchMessage, { kind: "merchant_move" }>, { env, db, config }: BatchContext): Promise<void> {
  if (work.kind === "event_log") await walkEventLog({ env, db, config, work });
  else if (work.kind === "reseal") await resealPage({ db, config, queue: env.BATCHES, message: work });
  else if (work.kind === "endpoint_replay") await replayPage({ db, config, queue: env.BATCHES, work });
  else await runUnit({ work, env, db, config });
}

/** The failure policy of each kind of batch work; every branch settles the message. */
async function settleFailure(
  { message, work }: { message: Message<unknown>; work: Exclude<BatchMessage, { kind: "merchant_move" }> },
  error: unknown,
  { env, db, config }: BatchContext,
): Promise<void> {
  if (work.kind === "reseal") {
    // A page that fails (a secret no configured key opens) stops the job, saying why: nothing is half re-sealed.
    await failReseal({ db, jobId: work.job_id, reason: safeErrorMessage(error) });
    message.ack();
  } else if (work.kind === "endpoint_replay") {
    // A replay is the merchant's to start again: a page that fails ends it, saying why, rather than resend out of order.
    await finishReplay({ db, replayId: work.replay_id, status: "cancelled", error: `replay stopped: ${safeErrorMessage(error)}` });
    message.ack();
  } else if (error instanceof SmartRouterError && error.kind === "authentication") {
    // Not worth retrying: mark the merchant, fail its batches, stop. PATCHing the key resumes batch work.
    await refuseMerchantKey({
      db,
      merchantId: work.merchant_id,
      detail: `${error.status ?? 401} ${error.errorType ?? "authentication failed"}`,
    });
    message.ack();
  } else if (work.kind === "event_log") {
    await retryWalk({ env, config, work, error });
    message.ack();
  } else {
    await postponeUnit({ env, db, config, message, work, error });
  }
}
