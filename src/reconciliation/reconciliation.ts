import { and, desc, eq, inArray, isNull, lt, type SQL } from "drizzle-orm";
import { alias } from "drizzle-orm/sqlite-core";
import { z } from "zod";
import { inPairList } from "../db/bulk";
import type { Database } from "../db/client";
import { servedHere } from "../db/fence";
import { afterRow } from "../db/keyset";
import { isInFlight, lastLookedAt, merchants, reconciliationRuns, transactions } from "../db/schema";
import { mergedRows, newestFirst } from "../db/shards";
import { decodePageCursor, keysetPage } from "../lib/cursor";
import { type BatchMessage, chunk } from "../queue/messages";
import { sendAll } from "../queue/send";

const MAX_PER_RUN = 500;
/** So that one merchant with thousands of in-flight records (manual captures, long disputes) never takes a whole run. */
const MAX_PER_MERCHANT = 100;

/**
 * The records a run looks at: each merchant's in-flight records not looked at since `cutoff`, least recently looked at
 * first and at most MAX_PER_MERCHANT of them, then the MAX_PER_RUN least recently looked at of those. Served by the
 * `transactions_reconcile` index: a few index entries per merchant, never the whole table.
 */
export function reconciliationCandidates(db: Database, cutoff: string) {
  const candidate = alias(transactions, "candidate");
  const merchantsOldest = db
    .select({ id: candidate.id })
    .from(candidate)
    .where(and(eq(candidate.merchantId, merchants.id), isInFlight(candidate.status), lt(lastLookedAt(candidate), cutoff)))
    .orderBy(lastLookedAt(candidate))
    .limit(MAX_PER_MERCHANT);
  // CROSS JOIN keeps merchants the outer loop in SQLite: a plain join lets the planner scan transactions instead.
  return (
    db
      .select({ merchantId: transactions.merchantId, id: transactions.id })
      .from(merchants)
      .crossJoin(transactions)
      // A merchant whose key Smart Router refuses is left alone until the key is PATCHed; one not served here, always.
      .where(
        and(
          isNull(merchants.smartRouterKeyRefusedAt),
          servedHere(merchants.id),
          eq(transactions.merchantId, merchants.id),
          inArray(transactions.id, merchantsOldest),
        ),
      )
      .orderBy(lastLookedAt(transactions), transactions.merchantId, transactions.id)
      .limit(MAX_PER_RUN)
  );
}

/**
 * Finds records in a non-final status that nothing has looked at for `staleAfterMs` (a delivery Smart Router gave up on,
 * a dropped webhook) and queues their refresh in the batch lane, so they reach their true state anyway. The records are
 * stamped as looked at when queued, so the next run takes the next ones even while these refreshes wait for the API.
 */
export async function startReconciliation({
  db,
  queue,
  now,
  staleAfterMs,
}: {
  db: Database;
  queue: Queue;
  now: number;
  staleAfterMs: number;
}) {
  const asOf = new Date(now).toISOString();
  const stale = await reconciliationCandidates(db, new Date(now - staleAfterMs).toISOString());
  const runId = `rec_${crypto.randomUUID().replaceAll("-", "")}`;
  const run = db.insert(reconciliationRuns).values({ id: runId, startedAt: asOf, found: stale.length });
  const stamp = db
    .update(transactions)
    .set({ reconciledAt: asOf })
    .where(
      inPairList(
        [transactions.merchantId, transactions.id],
        stale.map((row) => [row.merchantId, row.id] as const),
      ),
    );
  // Stamped before they are sent: should the send fail, the run fails loudly and these come round again a window later.
  await db.batch([run, stamp]);

  const messages: BatchMessage[] = [];
  // One pass over the found records, grouped by merchant; ends with the last group.
  for (const [merchantId, rows] of Map.groupBy(stale, (row) => row.merchantId)) {
    chunk(rows.map((row) => row.id)).forEach((ids, index) => {
      messages.push({
        v: 1,
        kind: "refresh",
        as_of: asOf,
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

const runCursor = z.strictObject({ s: z.string().min(1).max(64), i: z.string().min(1).max(64) });

/** Reconciliation runs of every shard (each cron run starts one per shard), newest first, in keyset pages of `limit`. */
export async function listReconciliationRuns({ dbs, cursor, limit = 20 }: { dbs: readonly Database[]; cursor?: string; limit?: number }) {
  const conditions: SQL[] = [];
  if (cursor !== undefined) {
    const after = decodePageCursor(cursor, runCursor);
    conditions.push(afterRow("desc", [reconciliationRuns.startedAt, reconciliationRuns.id], [after.s, after.i]));
  }
  const rows = await mergedRows(
    dbs,
    (db) =>
      db
        .select()
        .from(reconciliationRuns)
        .where(and(...conditions))
        .orderBy(desc(reconciliationRuns.startedAt), desc(reconciliationRuns.id))
        .limit(limit + 1),
    (a, b) => newestFirst([a.startedAt, a.id], [b.startedAt, b.id]),
  );
  const { page, nextCursor } = keysetPage(rows, limit, (row) => ({ s: row.startedAt, i: row.id }));
  return {
    runs: page.map((row) => ({
      id: row.id,
      started_at: row.startedAt,
      found: row.found,
      refreshed: row.refreshed,
      fixed: row.fixed,
      last_update_at: row.lastUpdateAt,
    })),
    next_cursor: nextCursor,
  };
}
