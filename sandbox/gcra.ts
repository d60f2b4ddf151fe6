/**
 * GCRA (generic cell rate algorithm), the token bucket Smart Router documents (smart-router.md §6).
 *
 * Time is kept in units of 1/rpm millisecond, counted from the bucket's first request, so one request costs exactly
 * 60 000 units and every comparison is integer arithmetic: no drift, no rounding surprises in `remaining`.
 */

/** A bucket's rate: `rpm` requests per minute on average, at most `burst` at once from a full bucket. */
export interface GcraLimit {
  rpm: number;
  burst: number;
}

/** What a bucket remembers between requests. */
export interface GcraState {
  /** Milliseconds (from the clock the caller uses) at which the bucket's unit count starts. */
  origin: number;
  /** Theoretical arrival time of the next request, in 1/rpm ms units from `origin`. */
  tat: number;
  /** The rpm `tat` was computed with; a rate change rescales it. */
  rpm: number;
}

export interface GcraDecision {
  allowed: boolean;
  /** Requests that could still be made right now after this one (0 when refused). */
  remaining: number;
  /** When refused: milliseconds until one request would be allowed. 0 when allowed. */
  retryAfterMs: number;
  /** Milliseconds until the bucket is full again. */
  resetAfterMs: number;
  /** The state to store: unchanged when refused. */
  state: GcraState;
}

const UNITS_PER_REQUEST = 60_000;

/** Checks that a limit is usable: whole positive numbers. */
function isValidLimit(limit: GcraLimit): boolean {
  return Number.isSafeInteger(limit.rpm) && limit.rpm > 0 && Number.isSafeInteger(limit.burst) && limit.burst > 0;
}

/** Takes one token at `nowMs` if the bucket has one; pure: returns the new state instead of changing it. */
export function gcraTake(state: GcraState | undefined, nowMs: number, limit: GcraLimit): GcraDecision {
  if (!isValidLimit(limit)) throw new RangeError(`invalid GCRA limit ${JSON.stringify(limit)}`);
  const now = Math.floor(nowMs);
  const base = rebase(state, now, limit.rpm);
  const t = (now - base.origin) * limit.rpm;
  const capacity = limit.burst * UNITS_PER_REQUEST;
  const tat = Math.max(base.tat, t);
  const next = tat + UNITS_PER_REQUEST;
  const used = next - t;
  if (used > capacity) {
    return {
      allowed: false,
      remaining: 0,
      retryAfterMs: Math.ceil((used - capacity) / limit.rpm),
      resetAfterMs: Math.ceil((tat - t) / limit.rpm),
      state: base,
    };
  }
  return {
    allowed: true,
    remaining: Math.floor((capacity - used) / UNITS_PER_REQUEST),
    retryAfterMs: 0,
    resetAfterMs: Math.ceil(used / limit.rpm),
    state: { origin: base.origin, tat: next, rpm: limit.rpm },
  };
}

/** Looks at a bucket without taking a token: how many requests it would allow right now. */
export function gcraRemaining(state: GcraState | undefined, nowMs: number, limit: GcraLimit): number {
  const now = Math.floor(nowMs);
  const base = rebase(state, now, limit.rpm);
  const t = (now - base.origin) * limit.rpm;
  const used = Math.max(base.tat - t, 0);
  return Math.max(Math.floor((limit.burst * UNITS_PER_REQUEST - used) / UNITS_PER_REQUEST), 0);
}

// A full (or new) bucket restarts its units at `now`, which keeps the integers small however long it lives;
// a bucket whose rate changed keeps the number of tokens it has used (units per token do not depend on the rate).
function rebase(state: GcraState | undefined, now: number, rpm: number): GcraState {
  if (!state || state.origin + state.tat / state.rpm <= now) return { origin: now, tat: 0, rpm };
  if (state.rpm === rpm) return state;
  return { origin: now, tat: Math.max(state.tat - (now - state.origin) * state.rpm, 0), rpm };
}
