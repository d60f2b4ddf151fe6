import { and, count, desc, eq, gte, isNull, lte, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { deadLetters, eventLogCursors, events, fulfillments, pipelineMinutes, reconciliationRuns, webhookDeliveries } from "../db/schema";
import { log } from "../lib/log";

/** The window `GET /v1/pipeline` may ask for: a minute to a day. */
export const PIPELINE_WINDOW_MINUTES = { min: 1, max: 1440, default: 60 } as const;
/** Lags measured per answer: the newest applied deliveries of the window, so a busy day costs one bounded read. */
export const LAG_SAMPLE = 10_000;

const PIPELINE_OUTCOMES = ["applied", "stale", "duplicate", "rejected", "pending", "ignored"] as const;
type PipelineOutcome = (typeof PIPELINE_OUTCOMES)[number];

const MINUTE_MS = 60_000;

/** The value at rank `q` (nearest rank) of ascending `sorted`, rounded to whole ms; null without values. */
function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const value = sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
  return value === undefined ? null : Math.round(value);
}

/** An RFC 3339 time as ISO 8601 UTC, or null when there is none or it does not parse. */
function isoOrNull(value: string | null | undefined): string | null {
  if (!value) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

/**
 * The window's first deliveries folded into inbox rows (0024), as pipeline_minutes counts them (0032): one row per minute
 * of the window (its first minute whole), by outcome, newest first; the applied ones' lags only on the newest rows until
 * LAG_SAMPLE are in, so a busy day's read stays bounded (the window function's running sum of `applied`, which is the
 * length of each row's `lags`).
 */
function foldedDeliveryReads({ db, merchantId, since, until }: { db: Database; merchantId: string; since: string; until: string }) {
  const { minute, applied, lags } = pipelineMinutes;
  const newer = sql`coalesce(sum(${applied}) OVER (ORDER BY ${minute} DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)`;
  return db
    .select({
      minute,
      pending: pipelineMinutes.pending,
      applied,
      stale: pipelineMinutes.stale,
      rejected: pipelineMinutes.rejected,
      ignored: pipelineMinutes.ignored,
      lags: sql<string | null>`CASE WHEN ${newer} < ${LAG_SAMPLE} THEN ${lags} END`,
    })
    .from(pipelineMinutes)
    .where(and(eq(pipelineMinutes.merchantId, merchantId), gte(minute, since.slice(0, 16)), lte(minute, until.slice(0, 16))))
    .orderBy(desc(minute));
}

type FoldedMinute = Awaited<ReturnType<typeof foldedDeliveryReads>>[number];

/** A minute row's counts as the other source's rows: per minute, per outcome, and its lags (dated at the minute's end). */
function unfoldMinutes(rows: readonly FoldedMinute[]) {
  // Never below zero: a minute the counts missed (an inbox row written by code before 0032 after its backfill) may have
  // an event leave an outcome it was never counted in.
  const counts = (row: FoldedMinute) => ({
    pending: Math.max(0, row.pending),
    applied: Math.max(0, row.applied),
    stale: Math.max(0, row.stale),
    rejected: Math.max(0, row.rejected),
    ignored: Math.max(0, row.ignored),
  });
  const counted = rows.map((row) => ({ minute: row.minute, counts: counts(row) }));
  return {
    perMinute: counted.map(({ minute, counts }) => ({ minute, count: Object.values(counts).reduce((sum, n) => sum + n, 0) })),
    outcomes: counted.flatMap(({ counts }) => Object.entries(counts).map(([outcome, count]) => ({ outcome, count }))),
    lags: rows.flatMap((row) =>
      row.lags === null
        ? []
        : (JSON.parse(row.lags) as unknown[])
            .filter((lag): lag is number => typeof lag === "number")
            .map((lagMs) => ({ receivedAt: `${row.minute}:59.999Z`, lagMs })),
    ),
  };
}

/**
 * The reads of the pipeline, one D1 batch: the window's deliveries per minute and by outcome, and their lags, from
 * webhook_deliveries rows and from pipeline_minutes' counts of inbox rows' first deliveries (the timeline fold), what waits, dead letters, the
 * backstop's cursor and the reconciliation runs.
 */
export function pipelineReads({ db, merchantId, from, to }: { db: Database; merchantId: string; from: number; to: number }) {
  const since = new Date(from).toISOString();
  const until = new Date(to).toISOString();
  const inWindow = and(
    eq(webhookDeliveries.merchantId, merchantId),
    gte(webhookDeliveries.receivedAt, since),
    lte(webhookDeliveries.receivedAt, until),
  );
  const minute = sql<string>`substr(${webhookDeliveries.receivedAt}, 1, 16)`;
  const outcome = sql<string>`CASE WHEN ${webhookDeliveries.duplicate} THEN 'duplicate' ELSE coalesce(${events.outcome}, 'pending') END`;
  const ofEvent = and(eq(events.merchantId, webhookDeliveries.merchantId), eq(events.id, webhookDeliveries.eventId));
  // The literal repeats the partial index's WHERE term (events_pending), which a bound parameter could not.
  const pending = and(eq(events.merchantId, merchantId), sql`${events.outcome} = 'pending'`);

  return [
    db.select({ minute, count: count() }).from(webhookDeliveries).where(inWindow).groupBy(minute),
    db.select({ outcome, count: count() }).from(webhookDeliveries).leftJoin(events, ofEvent).where(inWindow).groupBy(outcome),
    db
      .select({
        receivedAt: webhookDeliveries.receivedAt,
        lagMs: sql<number>`(julianday(${events.processedAt}) - julianday(${webhookDeliveries.receivedAt})) * 86400000`,
      })
      .from(webhookDeliveries)
      .innerJoin(events, ofEvent)
      .where(and(inWindow, eq(webhookDeliveries.duplicate, false), eq(events.outcome, "applied")))
      .orderBy(desc(webhookDeliveries.receivedAt))
      .limit(LAG_SAMPLE),
    foldedDeliveryReads({ db, merchantId, since, until }),
    // A pending row with a detail failed its last fetch-back and waits for its retry (ingest/consumer.ts); the oldest
    // first receipt among them is the backlog's age.
    db
      .select({ pending: count(), retrying: count(events.detail), oldest: sql<string | null>`min(${events.firstReceivedAt})` })
      .from(events)
      .where(pending),
    db
      .select({ count: count() })
      .from(fulfillments)
      .where(and(eq(fulfillments.merchantId, merchantId), eq(fulfillments.status, "pending"), sql`${fulfillments.attempts} > 0`)),
    db
      .select({ count: count() })
      .from(deadLetters)
      .where(and(eq(deadLetters.merchantId, merchantId), isNull(deadLetters.redrivenAt))),
    db.select().from(eventLogCursors).where(eq(eventLogCursors.merchantId, merchantId)),
    db
      .select({
        lastRunAt: sql<string | null>`max(${reconciliationRuns.startedAt})`,
        runs: sql<number>`count(*) FILTER (WHERE ${reconciliationRuns.startedAt} >= ${since})`,
      })
      .from(reconciliationRuns),
  ] as const;
}

/** Whole seconds from `iso` to `now`, never negative; null without a time. */
function ageSeconds(iso: string | null, now: number): number | null {
  return iso === null ? null : Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
}

/**
 * The merchant's webhook backlog, from its inbox: deliveries the consumer has taken in but not settled (verified and
 * applied, or found forged), how many and how long the oldest has waited since the edge accepted it. Per merchant by
 * construction. A delivery still in the queue before its first consumer batch (about a second when the consumer keeps
 * up) is not counted: the queue is shared by every merchant, and its own metrics (`webhookQueueMetrics`) are service-wide.
 */
function inboxBacklog(waiting: { pending: number; oldest: string | null } | undefined, now: number) {
  const oldest = isoOrNull(waiting?.oldest);
  return {
    source: "inbox" as const,
    count: waiting?.pending ?? 0,
    oldest_received_at: oldest,
    oldest_age_seconds: ageSeconds(oldest, now),
  };
}

/**
 * The webhook queue as the runtime reports it (`Queue.metrics()`): every merchant's messages, so only the operator sees
 * it. Null when the runtime cannot say (the call failed): the page then shows the inbox backlog alone.
 */
export async function webhookQueueMetrics({ queue, now }: { queue: Pick<Queue, "metrics">; now: number }) {
  try {
    const metrics = await queue.metrics();
    const oldest = metrics.oldestMessageTimestamp ? new Date(metrics.oldestMessageTimestamp).toISOString() : null;
    return {
      backlog_count: metrics.backlogCount,
      backlog_bytes: metrics.backlogBytes,
      oldest_message_at: oldest,
      oldest_age_seconds: ageSeconds(oldest, now),
    };
  } catch (error) {
    log("warn", "pipeline.queue_metrics_failed", { error: error instanceof Error ? error.message : String(error) });
    return null;
  }
}

/** Deliveries per minute from `from` to `now`, both sources summed, every minute the window touches (zeros included). */
function everyMinute(counts: readonly { minute: string; count: number }[], from: number, now: number) {
  const minutes = new Map<string, number>();
  for (const row of counts) minutes.set(row.minute, (minutes.get(row.minute) ?? 0) + row.count);
  const perMinute: { minute: string; count: number }[] = [];
  // Ends after windowMinutes + 1 steps (at most 1,441): every minute the window touches.
  for (let at = Math.floor(from / MINUTE_MS) * MINUTE_MS; at <= now; at += MINUTE_MS) {
    const iso = new Date(at).toISOString();
    perMinute.push({ minute: iso, count: minutes.get(iso.slice(0, 16)) ?? 0 });
  }
  return perMinute;
}

/**
 * The merchant's webhook pipeline over the last `windowMinutes`: deliveries per minute (every minute of the window,
 * zeros included), what became of them (a duplicate, else its event's outcome now), the lag from the edge's receipt to
 * the start of the consumer batch that applied the event (p50/p99 over the newest LAG_SAMPLE), what is waiting now
 * (pending inbox events; those of them, and fulfilment notifications, that failed once and are scheduled again), dead
 * letters not redriven, the event-log backstop's watermark, and the reconciliation runs (service-wide: they cover every
 * merchant). One D1 batch of reads.
 */
export async function pipelineSummary({
  db,
  merchantId,
  windowMinutes,
  now,
}: {
  db: Database;
  merchantId: string;
  windowMinutes: number;
  now: number;
}) {
  const from = now - windowMinutes * MINUTE_MS;
  const [perMinute, outcomes, rowLags, foldedMinutes, waiting, fulfilmentRetries, letters, backstop, reconciliation] = await db.batch(
    pipelineReads({ db, merchantId, from, to: now }),
  );
  const folded = unfoldMinutes(foldedMinutes);
  const deliveriesPerMinute = everyMinute([...perMinute, ...folded.perMinute], from, now);
  const counted = Object.fromEntries(PIPELINE_OUTCOMES.map((name) => [name, 0])) as Record<PipelineOutcome, number>;
  for (const row of [...outcomes, ...folded.outcomes]) {
    if ((PIPELINE_OUTCOMES as readonly string[]).includes(row.outcome)) counted[row.outcome as PipelineOutcome] += row.count;
  }
  // The newest LAG_SAMPLE of both sources together.
  const lags = [...rowLags, ...folded.lags].sort((a, b) => b.receivedAt.localeCompare(a.receivedAt)).slice(0, LAG_SAMPLE);
  const sorted = lags.map((row) => row.lagMs).sort((a, b) => a - b);
  const cursor = backstop[0];
  const watermark = isoOrNull(cursor?.watermarkFiredAt);
  return {
    pipeline: {
      from: new Date(from).toISOString(),
      to: new Date(now).toISOString(),
      deliveries_per_minute: deliveriesPerMinute,
      outcomes: counted,
      lag_ms: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) },
      waiting: {
        pending_events: waiting[0]?.pending ?? 0,
        retries_scheduled: (waiting[0]?.retrying ?? 0) + (fulfilmentRetries[0]?.count ?? 0),
      },
      backlog: inboxBacklog(waiting[0], now),
      dead_letters: letters[0]?.count ?? 0,
      backstop: {
        watermark,
        lag_seconds: ageSeconds(watermark, now),
        last_run_at: isoOrNull(cursor?.lastRunAt),
      },
      reconciliation: { last_run_at: isoOrNull(reconciliation[0]?.lastRunAt), runs: reconciliation[0]?.runs ?? 0 },
    },
  };
}
