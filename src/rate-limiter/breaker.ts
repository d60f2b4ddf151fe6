import type { Permit } from "./limiter";

/**
 * A circuit breaker for one Smart Router project, across both lanes and every bucket: a run of failed answers means the
 * API is down for all of them. Closed, every call the pacer allows goes out. Open, nothing goes out but one probe per
 * interval; the first good answer closes it again.
 */
export const BREAKER = {
  /** Failed answers in a row (5xx, network error, timeout) that open the breaker. */
  failureThreshold: 5,
  /** While open, one probe call per this interval. */
  probeIntervalMs: 10_000,
} as const;

export interface BreakerSettings {
  failureThreshold: number;
  probeIntervalMs: number;
}

/** The env variable that overrides `BREAKER.probeIntervalMs` (tests shorten it). */
export const PROBE_INTERVAL_VARIABLE = "BREAKER_PROBE_INTERVAL_MS";

export interface BreakerState {
  /**
   * Failed answers in a row since the last good one. Stored only with a change of position: losing the count to a restart
   * is safe, it costs a failing API at most `failureThreshold` − 1 more calls before the breaker opens.
   */
  failures: number;
  /** Null while closed. Open: no call before this time, then one probe, which moves it one interval on. */
  nextProbeAt: number | null;
  /** When it last opened (epoch ms); unset while closed, and in state stored before it was kept. */
  openedAt?: number;
}

export type BreakerPosition = "closed" | "open" | "half_open";

/** Where the breaker stands for an operator: `half_open` when a probe is due (the next call goes out and decides). */
export function breakerPosition(state: BreakerState, now: number): { position: BreakerPosition; since: number | null } {
  if (state.nextProbeAt === null) return { position: "closed", since: null };
  return { position: now >= state.nextProbeAt ? "half_open" : "open", since: state.openedAt ?? null };
}

/** A closed breaker: nothing has failed yet. */
export function initialBreakerState(): BreakerState {
  return { failures: 0, nextProbeAt: null };
}

/** The breaker's settings, with the probe interval from the env when it is set; a value that is not a whole number of ms fails loudly. */
export function breakerSettingsFrom(env: object): BreakerSettings {
  const value = PROBE_INTERVAL_VARIABLE in env ? (env as Record<string, unknown>)[PROBE_INTERVAL_VARIABLE] : undefined;
  if (value === undefined || value === "") return { ...BREAKER };
  const probeIntervalMs = Number(value);
  if (!Number.isInteger(probeIntervalMs) || probeIntervalMs < 1 || probeIntervalMs > 3_600_000) {
    throw new Error(`invalid configuration: ${PROBE_INTERVAL_VARIABLE}: must be a whole number of milliseconds, 1 to 3600000`);
  }
  return { ...BREAKER, probeIntervalMs };
}

/** Whether an answer says Smart Router is failing: a 5xx, or no answer at all (status 0: network error or timeout). */
export function isFailure(status: number): boolean {
  return status === 0 || status >= 500;
}

/**
 * Whether a call may go out now, as far as the breaker is concerned: always while closed; while open, only once the probe
 * is due. A denied caller is told to come back when it is (local backpressure: the queue re-enqueues without spending a
 * retry); that waiting ends when a probe gets a good answer, and costs no API call until then.
 */
export function breakerPermit(state: BreakerState, now: number): Permit {
  if (state.nextProbeAt === null || now >= state.nextProbeAt) return { granted: true };
  return { granted: false, retryAfterMs: Math.ceil(state.nextProbeAt - now) };
}

/**
 * Records that a call was granted. While open that call is the probe: the next one is due an interval later, whether or
 * not this one is ever observed, so a probe whose caller crashed cannot wedge the breaker. Returns whether the state
 * changed (and must be stored).
 */
export function recordGrant(state: BreakerState, now: number, settings: BreakerSettings): boolean {
  if (state.nextProbeAt === null) return false;
  state.nextProbeAt = now + settings.probeIntervalMs;
  return true;
}

/**
 * Learns from an answer. A failure counts, and the `failureThreshold`th in a row opens the breaker; a failure while open
 * (the probe's) keeps it open for another interval. A 429 says Smart Router is up but busy, which is the pacer's business:
 * it neither counts nor closes. Any other answer (2xx, 3xx, 4xx) proves the API is serving: the breaker closes. Returns
 * whether its position or next probe moved (and must be stored); a count alone does not.
 */
export function breakerObserve(state: BreakerState, status: number, now: number, settings: BreakerSettings): boolean {
  if (status === 429) return false;
  const before = state.nextProbeAt;
  if (!isFailure(status)) {
    state.failures = 0;
    state.nextProbeAt = null;
    state.openedAt = undefined;
    return before !== null;
  }
  state.failures += 1;
  if (state.nextProbeAt !== null) state.nextProbeAt = Math.max(state.nextProbeAt, now + settings.probeIntervalMs);
  else if (state.failures >= settings.failureThreshold) {
    state.nextProbeAt = now + settings.probeIntervalMs;
    state.openedAt = now;
  }
  return state.nextProbeAt !== before;
}
