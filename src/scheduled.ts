import { runAlertChecks } from "./alerts/scheduled";
import { watchShardCapacity } from "./alerts/shard-capacity";
import { startEventLogWalks } from "./backstop/event-log";
import { isStorageError, safeErrorMessage } from "./db/errors";
import { directoryDatabase, type Shard, shardsOf } from "./db/shards";
import { nudgeDueLanes } from "./endpoints/sweep";
import { type AppEnv, appConfig, retentionDays, shardCapacityBytes } from "./env";
import { resendStalledFulfillments } from "./fulfillment/sweep";
import { wakeOrphanedParking } from "./ingest/parking";
import { log } from "./lib/log";
import { listApiKeysInDirectory } from "./merchants/api-keys";
import { nudgeStuckMoves } from "./moves/moves";
import { startReconciliation } from "./reconciliation/reconciliation";
import { pruneRejectedEvents } from "./retention/prune";
import { archiveAudit, runRetention } from "./retention/retention";

type StepResult = Record<string, unknown>;

/** The Cron Trigger's work, step by step, each run on one shard; each step's result is logged with the run. */
export const SCHEDULED_STEPS: Record<string, (env: AppEnv, shard: Shard, scheduledTime: number) => Promise<StepResult>> = {
  fulfillment_sweep: async (env, { db }, scheduledTime) => ({
    fulfillments_resent: await resendStalledFulfillments({ env, db, now: scheduledTime }),
  }),
  // Endpoint lanes whose messages are due and whose nudge was lost (issue 22).
  endpoint_sweep: async (env, { db }, scheduledTime) => ({
    endpoint_lanes_nudged: await nudgeDueLanes({ db, queue: env.ENDPOINT_MESSAGES, now: scheduledTime }),
  }),
  // The backstop: every merchant's event log walked forward, so what no webhook brought is applied within a few runs.
  event_log: async (env, { db }, scheduledTime) => ({
    event_log_walks: await startEventLogWalks({ db, queue: env.BATCHES, now: scheduledTime }),
  }),
  reconciliation: async (env, { db }, scheduledTime) => {
    const staleAfterMs = appConfig(env).RECONCILE_AFTER_MINUTES * 60_000;
    const run = await startReconciliation({ db, queue: env.BATCHES, now: scheduledTime, staleAfterMs });
    return { reconciliation_run: run.runId, reconciliation_found: run.found };
  },
  // Forged ids are counted on their merchant; their inbox rows go after a week, so a flood does not grow D1 for ever.
  rejected_events_prune: async (_env, { db }, scheduledTime) => ({
    rejected_events_pruned: await pruneRejectedEvents({ db, now: scheduledTime }),
  }),
  // Business alerts (issue 13): every rule for every merchant, bounded per run, then the alert URL notifications due.
  alerts: (env, { db }, scheduledTime) => runAlertChecks({ env, db, now: scheduledTime }),
  // Issue 14: histories settled for RETENTION_DAYS move to R2; bookkeeping rows past their windows are pruned.
  retention: (env, { db }, scheduledTime) =>
    runRetention({ db, bucket: env.ARCHIVE, now: scheduledTime, retentionDays: retentionDays(env) }),
  // Issue 21: admin audit entries past a year move to R2 (the audit is on DB only, so shard 0's turn does it).
  audit_archive: async (env, { index }, scheduledTime) =>
    index === 0 ? archiveAudit({ db: directoryDatabase(env), bucket: env.ARCHIVE, now: scheduledTime }) : {},
  // Issue 20: deliveries parked for their merchant's Smart Router budget whose wake-up was lost are woken again.
  parked_deliveries: async (env, { db }, scheduledTime) => ({
    parked_woken: await wakeOrphanedParking({ db, queue: env.WEBHOOKS, now: scheduledTime }),
  }),
  // Issue 20: keys issued before the API key directory existed are entered in it (bounded per run; idempotent).
  api_key_directory: async (env, { db, index }) => ({
    api_keys_listed: await listApiKeysInDirectory({ db, directory: directoryDatabase(env), shard: index }),
  }),
  // Issue 21: each shard's size sampled once an hour for days to full, and its shard_capacity alerts at 80, 90 and 95 %.
  shard_capacity: (env, shard, scheduledTime) =>
    watchShardCapacity({
      directory: directoryDatabase(env),
      shard,
      capacityBytes: shardCapacityBytes(env),
      now: scheduledTime,
    }),
  // Issue 21: a move whose step message was lost goes on; one stuck before its switch past the horizon fails (on DB only).
  stuck_moves: async (env, { index }, scheduledTime) =>
    index === 0 ? nudgeStuckMoves({ env, queue: env.BATCHES, now: scheduledTime }) : {},
};

/** The shards' results of a run as one: counts are added up, anything else (a run id) is listed shard by shard. */
function combined(results: readonly StepResult[]): StepResult {
  const all: StepResult = {};
  for (const result of results) {
    for (const [name, value] of Object.entries(result)) {
      const before = all[name];
      if (typeof value === "number" && (before === undefined || typeof before === "number")) all[name] = (before ?? 0) + value;
      else all[name] = [...(Array.isArray(before) ? before : before === undefined ? [] : [before]), value];
    }
  }
  return all;
}

/**
 * The Cron Trigger's work, on every shard (src/db/shards.ts): lost fulfilment nudges, the event-log backstop,
 * reconciliation of records nothing has looked at for a while, pruning of week-old rejected inbox rows, business alerts,
 * retention (archive to R2, pruning), the API key directory's backfill and each shard's size and capacity alerts. Every step runs on every shard even when
 * another fails; each failure is logged at error with its shard. A D1 failure is that shard's own (unreachable,
 * unmigrated, full: `GET /health/ready` names it to the admin) and does not fail the run, so one shard's outage never
 * marks every run failed while the other shards' work is done; any other failure (a queue, the configuration) fails
 * the run, naming its steps.
 */
export async function runScheduledWork(env: AppEnv, scheduledTime: number): Promise<void> {
  const runs = Object.entries(SCHEDULED_STEPS).flatMap(([step, run]) => shardsOf(env).map((shard) => ({ step, shard, run })));
  const outcomes = await Promise.all(
    runs.map(async ({ step, shard, run }) => {
      try {
        return { step, shard: shard.index, result: await run(env, shard, scheduledTime) };
      } catch (error) {
        log("error", "scheduled.step_failed", { step, shard: shard.index, storage: isStorageError(error), error: safeErrorMessage(error) });
        return { step, shard: shard.index, error };
      }
    }),
  );
  const failed = outcomes.filter((outcome) => "error" in outcome);
  const failedSteps = [...new Set(failed.map((outcome) => outcome.step))];
  const failedShards = [...new Set(failed.filter((outcome) => isStorageError(outcome.error)).map((outcome) => outcome.shard))];
  const results = combined(outcomes.flatMap((outcome) => ("result" in outcome && outcome.result ? [outcome.result] : [])));
  log("info", "scheduled.run", { ...results, shards: shardsOf(env).length, failed_steps: failedSteps, failed_shards: failedShards });
  const fatal = failed.filter((outcome) => !isStorageError(outcome.error));
  if (fatal.length > 0) {
    throw new AggregateError(
      fatal.map((outcome) => outcome.error),
      `scheduled work failed: ${[...new Set(fatal.map((outcome) => outcome.step))].join(", ")}`,
    );
  }
}
