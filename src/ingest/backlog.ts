import { bucketsOf, type RateLimitSettings } from "../rate-limiter/limiter";
import { DEFAULT_RPM } from "../rate-limiter/pacer";

/** The edge admits a merchant's deliveries while fewer than this many minutes of its Smart Router events quota wait. */
export const BACKLOG_QUOTA_MINUTES = 10;
/** ...and never refuses below this backlog, however small the quota. */
export const MIN_BACKLOG_LIMIT = 1_000;
/**
 * Horizon of the count: deliveries received longer ago than this are no longer counted, waiting or not. It bounds what a
 * lost settle report can cost (the count heals itself within the window) and lets a merchant whose Smart Router is
 * down for hours still hand over one backlog's worth per window, the rest waiting at Smart Router (3 days of retries).
 */
export const BACKLOG_WINDOW_MINUTES = 30;
/** What a refused sender is told: about the time the pipeline needs to verify a tenth of a full backlog. */
export const BACKLOG_RETRY_AFTER_SECONDS = 60;

/** Deliveries admitted and settled per minute of the edge's `received_at` (minutes since the epoch). */
export interface BacklogState {
  minutes: Map<number, { admitted: number; settled: number }>;
}

export const newBacklog = (): BacklogState => ({ minutes: new Map() });

/** The minute a delivery's `received_at` falls in: the key both the edge and the consumer count it under. */
export const minuteOf = (receivedAt: string | number) =>
  Math.floor((typeof receivedAt === "number" ? receivedAt : Date.parse(receivedAt)) / 60_000);

/**
 * The backlog a merchant may have: ~10 minutes of the Smart Router quota its fetch-backs spend (events for a live
 * project, sandbox for a `test-` one), at least MIN_BACKLOG_LIMIT.
 */
export function backlogLimit(projectId: string, settings: RateLimitSettings | null | undefined): number {
  const bucket = bucketsOf(projectId).includes("sandbox") ? "sandbox" : "events";
  const rpm = (bucket === "sandbox" ? settings?.sandbox_rpm : settings?.events_rpm) ?? DEFAULT_RPM[bucket];
  return Math.max(MIN_BACKLOG_LIMIT, Math.ceil(rpm * BACKLOG_QUOTA_MINUTES));
}

/** Forgets minutes past the window: the loop ends because it only deletes. */
function prune(state: BacklogState, nowMinute: number) {
  for (const minute of state.minutes.keys()) {
    if (minute <= nowMinute - BACKLOG_WINDOW_MINUTES) state.minutes.delete(minute);
  }
}

/** Deliveries received within the window and not yet settled. */
export function backlogOf(state: BacklogState, nowMinute: number): number {
  prune(state, nowMinute);
  let waiting = 0;
  for (const { admitted, settled } of state.minutes.values()) waiting += Math.max(0, admitted - settled);
  return waiting;
}

/**
 * Past this many waiting deliveries, a merchant's new ones wait in its own parking (D1, ingest/parking.ts) instead of on
 * the webhooks queue every merchant shares: the queue then holds about two consumer batches of any one merchant, so
 * another merchant's fresh delivery never queues behind a flood (chaos --flood: 17 s behind one, before).
 */
export const QUEUE_SHARE = 200;

/** Where an admitted delivery waits: on the shared queue, or in its merchant's parking; `refuse`: 429. */
export type Admission = "queue" | "park" | "refuse";

/** Counts one delivery in when the backlog is under `limit`, saying where it waits; `refuse` (not counted) otherwise. */
export function admit(state: BacklogState, limit: number, minute: number, nowMinute: number): Admission {
  const waiting = backlogOf(state, nowMinute);
  if (waiting >= limit) return "refuse";
  const entry = state.minutes.get(minute) ?? { admitted: 0, settled: 0 };
  entry.admitted += 1;
  state.minutes.set(minute, entry);
  return waiting >= QUEUE_SHARE ? "park" : "queue";
}

/** Counts deliveries out: verified, rejected, duplicates or given up; minutes outside the window are ignored. */
export function settle(state: BacklogState, counts: readonly (readonly [minute: number, count: number])[], nowMinute: number): void {
  prune(state, nowMinute);
  for (const [minute, count] of counts) {
    const entry = state.minutes.get(minute);
    if (entry) entry.settled = Math.min(entry.admitted, entry.settled + count);
  }
}
