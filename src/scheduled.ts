import { and, eq, lt } from "drizzle-orm";
import { startReconciliation } from "./batches/reconciliation";
import { openDatabase } from "./db/client";
import { fulfillments } from "./db/schema";
import type { AppEnv } from "./env";
import { log } from "./lib/log";
import { sendAll } from "./queue/send";

const NUDGE_GRACE_MS = 2 * 60_000;

/** Re-sends fulfilment nudges for outbox rows never attempted well after they were requested (a nudge lost after commit). */
export async function resendStalledFulfillments(env: AppEnv, now: number): Promise<number> {
  const db = openDatabase(env.DB);
  const cutoff = new Date(now - NUDGE_GRACE_MS).toISOString();
  const stalled = await db
    .select({ merchantId: fulfillments.merchantId, transactionId: fulfillments.transactionId })
    .from(fulfillments)
    .where(
      and(
        eq(fulfillments.status, "pending"),
        // Never attempted: its nudge was lost. Attempted rows have a queue message retrying them already.
        eq(fulfillments.attempts, 0),
        lt(fulfillments.requestedAt, cutoff),
      ),
    )
    .limit(100);
  await sendAll(
    env.FULFILLMENTS,
    stalled.map((row) => ({ v: 1, merchant_id: row.merchantId, transaction_id: row.transactionId })),
  );
  return stalled.length;
}

/** The Cron Trigger's work: lost fulfilment nudges, then reconciliation of records no webhook has moved for a while. */
export async function runScheduledWork(env: AppEnv, scheduledTime: number): Promise<void> {
  const resent = await resendStalledFulfillments(env, scheduledTime);
  const minutes = Number(env.RECONCILE_AFTER_MINUTES);
  const staleAfterMs = (Number.isFinite(minutes) && minutes >= 0 ? minutes : 30) * 60_000;
  const run = await startReconciliation(openDatabase(env.DB), env.BATCHES, scheduledTime, staleAfterMs);
  log("info", "scheduled.run", { fulfillments_resent: resent, reconciliation_run: run.runId, reconciliation_found: run.found });
}
