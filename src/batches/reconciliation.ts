import { and, desc, inArray, isNull, lt, or } from "drizzle-orm";
import type { Database } from "../db/client";
import { reconciliationRuns, transactions } from "../db/schema";
import { sendAll } from "../queue/send";
import { IN_FLIGHT_STATUSES } from "../transactions/status";
import { type BatchMessage, chunk } from "./messages";

const MAX_PER_RUN = 500;

/**
 * Finds records in a non-final status that no webhook has touched for `staleAfterMs` (a delivery Smart Router gave up on,
 * a dropped webhook) and queues their refresh in the batch lane, so they reach their true state anyway.
 */
export async function startReconciliation(db: Database, queue: Queue, now: number, staleAfterMs: number) {
  const cutoff = new Date(now - staleAfterMs).toISOString();
  const stale = await db
    .select({ merchantId: transactions.merchantId, id: transactions.id })
    .from(transactions)
    .where(
      and(
        inArray(transactions.status, [...IN_FLIGHT_STATUSES]),
        lt(transactions.updatedAt, cutoff),
        // Refreshed recently and found unchanged (e.g. authorized, awaiting a manual capture): leave it for a while.
        or(isNull(transactions.reconciledAt), lt(transactions.reconciledAt, cutoff)),
      ),
    )
    .orderBy(transactions.updatedAt)
    .limit(MAX_PER_RUN);
  const runId = `rec_${crypto.randomUUID().replaceAll("-", "")}`;
  await db.insert(reconciliationRuns).values({ id: runId, startedAt: new Date(now).toISOString(), found: stale.length });
  const messages: BatchMessage[] = [];
  for (const [merchantId, rows] of Map.groupBy(stale, (row) => row.merchantId)) {
    chunk(rows.map((row) => row.id)).forEach((ids, index) => {
      messages.push({
        v: 1,
        kind: "refresh",
        as_of: new Date(now).toISOString(),
        unit_id: `${runId}/${merchantId}/${index}`,
        batch_id: null,
        run_id: runId,
        merchant_id: merchantId,
        transaction_ids: ids,
      });
    });
  }
  await sendAll(queue, messages);
  return { runId, found: stale.length };
}

/** The latest reconciliation runs, newest first. */
export async function recentReconciliationRuns(db: Database, limit = 20) {
  const rows = await db.select().from(reconciliationRuns).orderBy(desc(reconciliationRuns.startedAt)).limit(limit);
  return rows.map((row) => ({
    id: row.id,
    started_at: row.startedAt,
    found: row.found,
    refreshed: row.refreshed,
    fixed: row.fixed,
    last_update_at: row.lastUpdateAt,
  }));
}
