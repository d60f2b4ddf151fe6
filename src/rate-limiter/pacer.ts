import { BUCKETS, type Bucket, type Lane, type Permit, type RateLimitSettings, type RateObservation } from "./limiter";

/** Defaults until Smart Router's own `x-ratelimit` header says otherwise (smart-router.md §6 quotes 3000 rpm as an example). */
export const DEFAULT_RPM: Record<Bucket, number> = { primary: 3000, events: 3000, sandbox: 1200 };
export const DEFAULT_BATCH_SHARE = 0.5;

/** Tuning that is ours, not Smart Router's. */
export const PACING = {
  /** Fraction of Smart Router's rate we plan to use: clock skew and network jitter must never push us over. */
  headroom: 0.95,
  /** Calls the interactive lane may make back to back (GCRA burst); kept below Smart Router's own. */
  burst: 4,
  /** Batch work starts at this fraction of its share… */
  batchStartFraction: 0.1,
  /** …and grows by this factor every interval without a 429, halving on one. */
  batchGrowthFactor: 1.5,
  batchGrowthIntervalMs: 2_000,
} as const;

interface BucketState {
  rpm: number;
  /** GCRA theoretical arrival time of the next call, in epoch ms. */
  tat: number;
  /** The batch lane's own GCRA clock and current (slow-start) rate. */
  batchTat: number;
  batchRpm: number;
  lastGrowth: number;
  /** After a 429 nothing is granted before this time. */
  pausedUntil: number;
  /** When Smart Router last answered 429 (epoch ms, oldest first, at most RECENT_429S_KEPT); absent in state stored before. */
  recent429s?: number[];
}

/** 429s remembered per bucket for `GET /v1/budget`: the last few are what an operator needs to see a pattern. */
export const RECENT_429S_KEPT = 20;

export interface PacerState {
  batchShare: number;
  /** Rates the merchant set through the admin API; Smart Router's header overrides them once seen. */
  configured: Partial<Record<Bucket, number>>;
  buckets: Record<Bucket, BucketState>;
}

const effectiveRpm = (bucket: BucketState) => bucket.rpm * PACING.headroom;
const interval = (rpm: number) => 60_000 / rpm;
const tolerance = (bucket: BucketState) => interval(effectiveRpm(bucket)) * (PACING.burst - 1);
const batchCeiling = (state: PacerState, bucket: BucketState) => effectiveRpm(bucket) * state.batchShare;
const batchFloor = (state: PacerState, bucket: BucketState) => batchCeiling(state, bucket) * PACING.batchStartFraction;

/** A fresh pacer for a project, full buckets, batch at its slow-start rate. */
export function initialPacerState(settings: RateLimitSettings | null, now: number): PacerState {
  const configured: Partial<Record<Bucket, number>> = {
    primary: settings?.primary_rpm,
    events: settings?.events_rpm,
    sandbox: settings?.sandbox_rpm,
  };
  const state: PacerState = {
    batchShare: settings?.batch_share ?? DEFAULT_BATCH_SHARE,
    configured,
    buckets: {} as Record<Bucket, BucketState>,
  };
  for (const name of BUCKETS) {
    const rpm = configured[name] ?? DEFAULT_RPM[name];
    const bucket: BucketState = { rpm, tat: now, batchTat: now, batchRpm: 0, lastGrowth: now, pausedUntil: 0 };
    bucket.batchRpm = batchFloor(state, bucket);
    state.buckets[name] = bucket;
  }
  return state;
}

/** Whether the pacer already runs under these admin settings (its rates and batch share). */
export function sameSettings(state: PacerState, settings: RateLimitSettings | null): boolean {
  const wanted = { primary: settings?.primary_rpm, events: settings?.events_rpm, sandbox: settings?.sandbox_rpm };
  return (
    state.batchShare === (settings?.batch_share ?? DEFAULT_BATCH_SHARE) && BUCKETS.every((name) => state.configured[name] === wanted[name])
  );
}

/**
 * The pacer of an object that lost its memory, from the record it last stored: rates, 429 pauses and clocks as stored,
 * then as if the burst had just been spent now and the batch lane were back at its slow start. Between two stored
 * records the rate does not change (a new rate is stored), and a grant or a drift correction never moves a clock more
 * than one burst (batch: one slow-start interval) past its own time, so these clocks are at or past any the lost
 * instance reached: the restored pacer grants nothing it could not have granted.
 */
export function restorePacer(stored: PacerState, now: number): PacerState {
  const state = structuredClone(stored);
  for (const name of BUCKETS) {
    const bucket = state.buckets[name];
    bucket.tat = Math.max(bucket.tat, now + interval(effectiveRpm(bucket)) * PACING.burst);
    bucket.batchRpm = batchFloor(state, bucket);
    bucket.batchTat = Math.max(bucket.batchTat, now + interval(bucket.batchRpm));
    bucket.lastGrowth = now;
  }
  return state;
}

/** Applies changed admin settings without forgetting what the buckets have already spent. */
export function reconfigure(state: PacerState, settings: RateLimitSettings | null): void {
  state.batchShare = settings?.batch_share ?? DEFAULT_BATCH_SHARE;
  state.configured = { primary: settings?.primary_rpm, events: settings?.events_rpm, sandbox: settings?.sandbox_rpm };
  for (const name of BUCKETS) {
    const bucket = state.buckets[name];
    bucket.rpm = state.configured[name] ?? bucket.rpm;
    bucket.batchRpm = Math.min(Math.max(bucket.batchRpm, batchFloor(state, bucket)), batchCeiling(state, bucket));
  }
}

/**
 * Takes one call's token from a bucket, or says how long to wait. Interactive calls may use the GCRA burst; batch calls
 * never touch it (so an interactive call never waits behind batch work), are capped at the batch share, and pace at the
 * slow-start rate.
 */
export function acquire(state: PacerState, bucketName: Bucket, lane: Lane, now: number): Permit {
  const bucket = state.buckets[bucketName];
  if (now < bucket.pausedUntil) return { granted: false, retryAfterMs: Math.ceil(bucket.pausedUntil - now) };
  const step = interval(effectiveRpm(bucket));
  const tat = Math.max(bucket.tat, now);

  if (lane === "interactive") {
    const earliest = tat - tolerance(bucket);
    if (earliest > now) return { granted: false, retryAfterMs: Math.ceil(earliest - now) };
    bucket.tat = tat + step;
    return { granted: true };
  }

  if (now - bucket.lastGrowth >= PACING.batchGrowthIntervalMs) {
    bucket.batchRpm = Math.min(batchCeiling(state, bucket), bucket.batchRpm * PACING.batchGrowthFactor);
    bucket.lastGrowth = now;
  }
  const batchTat = Math.max(bucket.batchTat, now);
  const wait = Math.max(batchTat - now, tat - now);
  if (wait > 0) return { granted: false, retryAfterMs: Math.ceil(wait) };
  bucket.batchTat = batchTat + interval(bucket.batchRpm);
  bucket.tat = tat + step;
  return { granted: true };
}

/**
 * Learns from Smart Router's answer: its limit header sets the rate, `remaining` corrects drift, a 429 empties the bucket.
 * Returns whether it learned something a restart must not forget (a new rate, a 429's pause), so the state is stored.
 */
export function observe(state: PacerState, observation: RateObservation, now: number): boolean {
  const bucket = state.buckets[observation.bucket];
  let learned = false;
  if (observation.limitPerMinute !== undefined && observation.limitPerMinute > 0 && observation.limitPerMinute !== bucket.rpm) {
    bucket.rpm = observation.limitPerMinute;
    bucket.batchRpm = Math.min(Math.max(bucket.batchRpm, batchFloor(state, bucket)), batchCeiling(state, bucket));
    learned = true;
  }
  const step = interval(effectiveRpm(bucket));
  if (observation.remaining !== undefined && observation.remaining >= 0) {
    // Smart Router has fewer tokens than we think: move our clock forward to match, never backward.
    bucket.tat = Math.max(bucket.tat, now + tolerance(bucket) - (observation.remaining - 1) * step);
  }
  if (observation.status === 429) {
    const pause = observation.retryAfterMs ?? step * PACING.burst;
    bucket.pausedUntil = Math.max(bucket.pausedUntil, now + pause);
    bucket.tat = Math.max(bucket.tat, now + pause) + tolerance(bucket);
    bucket.batchRpm = Math.max(batchFloor(state, bucket), bucket.batchRpm / 2);
    bucket.lastGrowth = now;
    bucket.recent429s = [...(bucket.recent429s ?? []), now].slice(-RECENT_429S_KEPT);
    learned = true;
  }
  return learned;
}

/** What one bucket can grant now, without granting anything: the rate, interactive tokens left, the batch lane's pace. */
export function bucketBudget(state: PacerState, bucketName: Bucket, now: number) {
  const bucket = state.buckets[bucketName];
  const step = interval(effectiveRpm(bucket));
  // GCRA: calls allowed back to back now are those whose arrival time stays within the tolerance (at most the burst).
  const ahead = Math.max(bucket.tat, now) - now;
  const tokens = now < bucket.pausedUntil ? 0 : Math.floor((tolerance(bucket) - ahead) / step) + 1;
  return {
    ratePerMinute: bucket.rpm,
    tokensLeft: Math.min(PACING.burst, Math.max(0, tokens)),
    batchRatePerMinute: bucket.batchRpm,
    batchShare: state.batchShare,
    recent429s: bucket.recent429s ?? [],
  };
}
