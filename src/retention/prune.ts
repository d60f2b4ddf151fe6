import { type SQL, sql } from "drizzle-orm";
import type { SQLiteColumn, SQLiteTable } from "drizzle-orm/sqlite-core";
import { runBatch, sqlLiterals } from "../db/bulk";
import type { Database } from "../db/client";
import { servedHere } from "../db/fence";
import {
  alerts,
  batches,
  batchUnits,
  endpointMessages,
  endpoints,
  events,
  fetchBacks,
  merchants,
  PIPELINE_MINUTES_KEPT_MINUTES,
  pipelineMinutes,
  reconciliationRuns,
  transactionChanges,
  transactionStreams,
  webhookDeliveries,
} from "../db/schema";
import { CAPTURED_STATUSES } from "../smart-router/status";

const DAY_MS = 86_400_000;

/** The instant `days` days before `now`, as stored timestamps are written (ISO 8601 UTC with milliseconds). */
export const daysBefore = (now: number, days: number) => new Date(now - days * DAY_MS).toISOString();

/** Cloudflare Queues keep a message 14 days at most: past that no redelivery can name a finished unit again. */
export const BATCH_UNITS_KEPT_DAYS = 14;
/** Rows deleted per table per run at most, so each statement stays short; a larger backlog goes over the next runs. */
export const PRUNED_PER_TABLE_PER_RUN = 5_000;

/** `DELETE … WHERE rowid IN (the oldest-first search of `time`'s index, capped)`, for a table not kept per merchant. */
function pruneBefore(table: SQLiteTable, time: SQLiteColumn, before: string, kept: SQL = sql`false`): SQL {
  return sql`DELETE FROM ${table} WHERE rowid IN (
    SELECT rowid FROM ${table} WHERE ${time} < ${before} AND NOT (${kept}) LIMIT ${PRUNED_PER_TABLE_PER_RUN})`;
}

/** A batch unit whose batch's merchant this shard does not serve (db/fence.ts): its other shard prunes it. */
const unitNotServed = sql`NOT ${servedHere(sql`(SELECT b.merchant_id FROM ${batches} AS b WHERE b.id = ${batchUnits.batchId})`)}`;

/** Merchant `m` is served here: every per-merchant statement below prunes only those (a move's copy is its source's). */
const served = servedHere(sql`m.id`);

/**
 * The same for a per-merchant table with a `(merchant_id, <time>)` index: CROSS JOIN keeps merchants the outer loop, so
 * SQLite searches the index once per merchant instead of scanning the table (as `unlinkedEventsBefore` prunes the inbox).
 * `orphan` (on the row `x`) keeps what it does not hold: rows some payment's history still owns.
 */
function prunePerMerchant(table: SQLiteTable, time: SQLiteColumn, before: string, orphan: SQL): SQL {
  return sql`DELETE FROM ${table} WHERE rowid IN (
    SELECT x.rowid FROM ${merchants} AS m CROSS JOIN ${table} AS x
      ON x.merchant_id = m.id AND x.${sql.identifier(time.name)} < ${before}
    WHERE ${served} AND ${orphan}
    LIMIT ${PRUNED_PER_TABLE_PER_RUN})`;
}

/**
 * A timeline row no payment can show: its event is not in the inbox as a transaction's (never verified, ignored, rejected,
 * or gone). A payment's own rows leave D1 only with its history, to R2 (archive.ts). Status changes and fulfilment
 * attempts have no such step (0027): each is written in the batch that writes its record, and no record is deleted.
 */
const eventOrphan = sql`NOT EXISTS (SELECT 1 FROM ${events} AS e
  WHERE e.merchant_id = x.merchant_id AND e.id = x.event_id AND e.transaction_id IS NOT NULL)`;

/**
 * Inbox rows of one outcome that carry no transaction (ignored: not a transaction's event; rejected: judged forged)
 * processed before `before`, at most `limit`. The search walks `events_transaction` at (merchant, NULL) per merchant
 * instead of the whole inbox.
 */
function unlinkedEventsBefore(outcome: "ignored" | "rejected", before: string, limit: number): SQL {
  // The inbox has no rowid (0029): its rows are named by their key.
  return sql`DELETE FROM ${events} WHERE (id, merchant_id) IN (
    SELECT e.id, e.merchant_id FROM ${merchants} AS m CROSS JOIN ${events} AS e ON e.merchant_id = m.id AND e.transaction_id IS NULL
    WHERE ${served} AND e.outcome = ${outcome} AND e.processed_at < ${before}
    LIMIT ${limit})`;
}

/**
 * The pipeline's minute rows (0032) of minutes before `before` (`YYYY-MM-DDTHH:MM`), searched on the key per merchant.
 * Horizon PIPELINE_MINUTES_KEPT_MINUTES (past the widest window, whatever RETENTION_DAYS is); PRUNED_PER_TABLE_PER_RUN a
 * run, the rest on the next runs (a day's rows of a merchant are 1,440 at most).
 */
function pipelineMinutesBefore(before: string): SQL {
  return sql`DELETE FROM ${pipelineMinutes} WHERE (merchant_id, minute) IN (
    SELECT x.merchant_id, x.minute FROM ${merchants} AS m CROSS JOIN ${pipelineMinutes} AS x ON x.merchant_id = m.id AND x.minute < ${before}
    WHERE ${served} LIMIT ${PRUNED_PER_TABLE_PER_RUN})`;
}

/** The first minute pipeline_minutes keeps at `now`, as its rows name minutes. */
export const pipelineMinutesFrom = (now: number) => new Date(now - PIPELINE_MINUTES_KEPT_MINUTES * 60_000).toISOString().slice(0, 16);

/**
 * Finished batches (completed, failed, cancelled) that finished before `before`. `batches_merchant` is (merchant,
 * created_at) and a batch is created before it finishes, so the index search on created_at holds every candidate.
 */
function finishedBatchesBefore(before: string): SQL {
  return sql`DELETE FROM ${batches} WHERE rowid IN (
    SELECT x.rowid FROM ${merchants} AS m CROSS JOIN ${batches} AS x ON x.merchant_id = m.id AND x.created_at < ${before}
    WHERE ${served} AND x.status IN ('completed', 'failed', 'cancelled') AND x.finished_at < ${before}
    LIMIT ${PRUNED_PER_TABLE_PER_RUN})`;
}

/**
 * Resolved alerts resolved before `before` whose notification is not still owed (a pending one is the notifier's until
 * its own 24 h horizon). Opened before resolved, so `alerts_merchant_state_opened` at (merchant, 'resolved') holds them.
 */
function resolvedAlertsBefore(before: string): SQL {
  return sql`DELETE FROM ${alerts} WHERE rowid IN (
    SELECT x.rowid FROM ${merchants} AS m CROSS JOIN ${alerts} AS x
      ON x.merchant_id = m.id AND x.state = 'resolved' AND x.opened_at < ${before}
    WHERE ${served} AND x.resolved_at < ${before} AND (x.notification_status IS NULL OR x.notification_status <> 'pending')
    LIMIT ${PRUNED_PER_TABLE_PER_RUN})`;
}

/**
 * Settled endpoint messages (delivered, or given up: failed) created before `before`, searched per endpoint in
 * `endpoint_messages_created`; a pending one is never pruned. Only enabled endpoints are walked: a paused or disabled
 * endpoint keeps piling up pending messages in that index range, which every run would read again; what it had settled
 * waits until it is enabled again.
 */
function settledEndpointMessagesBefore(before: string): SQL {
  return sql`DELETE FROM ${endpointMessages} WHERE rowid IN (
    SELECT x.rowid FROM ${endpoints} AS ep CROSS JOIN ${endpointMessages} AS x ON x.endpoint_id = ep.id AND x.created_at < ${before}
    WHERE ep.status = 'enabled' AND ${servedHere(sql`ep.merchant_id`)} AND x.status IN ('delivered', 'failed')
    LIMIT ${PRUNED_PER_TABLE_PER_RUN})`;
}

/**
 * Transaction changes created before `before` that no endpoint message still refers to (a message's body is its change;
 * messages go first in the same batch). A transaction's latest change stays while the stream may still announce its
 * first capture after it (transactions/stream.ts reads it then): once the capture is announced, or while its status is
 * not a captured one (a capture then brings a change of its own), it goes too, so old rows kept are few and the walk
 * does not read them again run after run.
 */
function unreferencedChangesBefore(before: string): SQL {
  return sql`DELETE FROM ${transactionChanges} WHERE rowid IN (
    SELECT x.rowid FROM ${merchants} AS m CROSS JOIN ${transactionChanges} AS x ON x.merchant_id = m.id AND x.created_at < ${before}
    JOIN ${transactionStreams} AS s ON s.merchant_id = x.merchant_id AND s.transaction_id = x.transaction_id
    WHERE ${served} AND (x.sequence < s.sequence OR s.captured OR x.status NOT IN (${sqlLiterals(CAPTURED_STATUSES)}))
      AND NOT EXISTS (SELECT 1 FROM ${endpoints} AS ep JOIN ${endpointMessages} AS em ON em.endpoint_id = ep.id
        AND em.transaction_id = x.transaction_id AND em.position IN (2 * x.sequence, 2 * x.sequence + 1)
        WHERE ep.merchant_id = x.merchant_id)
    LIMIT ${PRUNED_PER_TABLE_PER_RUN})`;
}

/**
 * The pruning statements of a run at `now`, by what they delete. Windows: batch units BATCH_UNITS_KEPT_DAYS after they
 * finished; reconciliation runs, ignored inbox rows and the timeline rows no payment can show (deliveries, fetch-backs)
 * `retentionDays` after they were written; resolved alerts `retentionDays` after
 * they were resolved; finished batches `retentionDays` after they finished, and never before BATCH_UNITS_KEPT_DAYS (a
 * cancelled batch's queued messages may still arrive until then and must find it); settled endpoint messages and the
 * changes no message refers to `retentionDays` after they were created (replay resends only what is left); the pipeline's
 * minute rows PIPELINE_MINUTES_KEPT_MINUTES after their minute. Rejected inbox rows have their own step
 * (`rejectedEventsPrune`, 7 days). Dead letters are not pruned: they go to R2 (pages.ts), as payments' timelines do.
 */
export function pruneStatements({ now, retentionDays }: { now: number; retentionDays: number }): Record<string, SQL> {
  const window = daysBefore(now, retentionDays);
  const batchWindow = daysBefore(now, Math.max(retentionDays, BATCH_UNITS_KEPT_DAYS));
  return {
    batch_units: pruneBefore(batchUnits, batchUnits.finishedAt, daysBefore(now, BATCH_UNITS_KEPT_DAYS), unitNotServed),
    reconciliation_runs: pruneBefore(reconciliationRuns, reconciliationRuns.startedAt, window),
    ignored_events: unlinkedEventsBefore("ignored", window, PRUNED_PER_TABLE_PER_RUN),
    webhook_deliveries: prunePerMerchant(webhookDeliveries, webhookDeliveries.receivedAt, window, eventOrphan),
    fetch_backs: prunePerMerchant(fetchBacks, fetchBacks.at, window, eventOrphan),
    batches: finishedBatchesBefore(batchWindow),
    alerts: resolvedAlertsBefore(window),
    endpoint_messages: settledEndpointMessagesBefore(window),
    transaction_changes: unreferencedChangesBefore(window),
    pipeline_minutes: pipelineMinutesBefore(pipelineMinutesFrom(now)),
  };
}

/** Runs the pruning statements in one D1 batch; answers how many rows each deleted. */
export async function pruneBookkeeping({
  db,
  now,
  retentionDays,
}: {
  db: Database;
  now: number;
  retentionDays: number;
}): Promise<Record<string, number>> {
  const statements = Object.entries(pruneStatements({ now, retentionDays }));
  const results = await runBatch(
    db.$client,
    statements.map(([, statement]) => statement),
  );
  return Object.fromEntries(statements.map(([name], i) => [name, results[i]?.meta.changes ?? 0]));
}

/** Rejected inbox rows are kept this long: long enough to explain a flood, short enough that forged ids do not pile up. */
export const REJECTED_EVENTS_KEPT_MS = 7 * 24 * 3_600_000;
/** Rows deleted per run at most, so one statement stays short; a larger backlog goes over the next runs. */
export const REJECTED_EVENTS_PRUNED_PER_RUN = 5_000;

/**
 * Deletes rejected inbox rows processed more than REJECTED_EVENTS_KEPT_MS before `now`, at most
 * REJECTED_EVENTS_PRUNED_PER_RUN of them (in no particular order). Rejected rows have no transaction, so the search walks
 * `events_transaction` at (merchant, NULL) per merchant instead of the whole inbox. A pruned id delivered again is
 * verified again: the count on the merchant stays, the row does not.
 */
export function rejectedEventsPrune(now: number): SQL {
  return unlinkedEventsBefore("rejected", new Date(now - REJECTED_EVENTS_KEPT_MS).toISOString(), REJECTED_EVENTS_PRUNED_PER_RUN);
}

/** Runs `rejectedEventsPrune` (one statement); returns how many rows went. */
export async function pruneRejectedEvents({ db, now }: { db: Database; now: number }): Promise<number> {
  return (await db.run(rejectedEventsPrune(now))).meta.changes;
}
