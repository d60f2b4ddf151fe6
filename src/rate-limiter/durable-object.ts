import { DurableObject } from "cloudflare:workers";
import {
  type BreakerPosition,
  type BreakerSettings,
  type BreakerState,
  breakerObserve,
  breakerPermit,
  breakerPosition,
  breakerSettingsFrom,
  initialBreakerState,
  recordGrant,
} from "./breaker";
import { type Bucket, bucketsOf, type Lane, type Permit, type RateLimitSettings, type RateObservation } from "./limiter";
import { acquire, bucketBudget, initialPacerState, observe, type PacerState, reconfigure, restorePacer, sameSettings } from "./pacer";

const STATE_KEY = "pacer";
const BREAKER_KEY = "breaker";

/**
 * One per Smart Router project (addressed by project id): paces every outbound call of every merchant Worker that uses
 * the project, and holds the project's circuit breaker. Each method runs without awaiting, so calls never interleave.
 *
 * Storage holds only what is rare and must survive a restart, written when it changes (and before the answer, by the
 * output gate): a learned rate, a 429's pause, the admin settings, the breaker's position and next probe, and a first
 * record that marks the project as used. Tokens live in memory; an instance that finds a record restores
 * conservatively (pacer.ts `restorePacer`: the burst spent, the batch lane at its slow start), so a lost memory never
 * lets more calls out. No alarm and no periodic write: nothing here runs on a timer.
 *
 * Env: `BREAKER_PROBE_INTERVAL_MS` (optional, whole ms) overrides the breaker's probe interval, 10 s by default.
 */
export class ProjectRateLimiter extends DurableObject {
  #state: PacerState | undefined;
  #breaker: BreakerState | undefined;
  readonly #breakerSettings: BreakerSettings;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    this.#breakerSettings = breakerSettingsFrom(env);
  }

  /** The pacer under `settings`, restored from storage by a fresh instance; `unstored` when storage must catch up. */
  #load(settings: RateLimitSettings | null, now: number): { state: PacerState; unstored: boolean } {
    let unstored = false;
    if (this.#state === undefined) {
      const stored = this.ctx.storage.kv.get<PacerState>(STATE_KEY);
      this.#state = stored ? restorePacer(stored, now) : initialPacerState(settings, now);
      // No record: never used, so nothing was spent; the first record makes a later restart restore conservatively.
      unstored = stored === undefined;
    }
    if (!sameSettings(this.#state, settings)) {
      reconfigure(this.#state, settings);
      unstored = true;
    }
    return { state: this.#state, unstored };
  }

  #loadBreaker(): BreakerState {
    this.#breaker ??= this.ctx.storage.kv.get<BreakerState>(BREAKER_KEY) ?? initialBreakerState();
    return this.#breaker;
  }

  /** Reserves one call in `bucket` for `lane`, or says how long to wait: the breaker first, then the bucket's pace. */
  acquire(bucket: Bucket, lane: Lane, settings: RateLimitSettings | null): Permit {
    const now = Date.now();
    const breaker = this.#loadBreaker();
    const gate = breakerPermit(breaker, now);
    if (!gate.granted) return gate;
    const { state, unstored } = this.#load(settings, now);
    const permit = acquire(state, bucket, lane, now);
    if (unstored) this.ctx.storage.kv.put(STATE_KEY, state);
    if (!permit.granted) return permit;
    // While open this grant is the probe: the next one's time is stored so a restart cannot grant a second one early.
    if (recordGrant(breaker, now, this.#breakerSettings)) this.ctx.storage.kv.put(BREAKER_KEY, breaker);
    return permit;
  }

  /** Learns from Smart Router's rate-limit headers and 429s, and from its failures (status 0: no answer). */
  observe(observation: RateObservation, settings: RateLimitSettings | null): void {
    const now = Date.now();
    const { state, unstored } = this.#load(settings, now);
    if (observe(state, observation, now) || unstored) this.ctx.storage.kv.put(STATE_KEY, state);
    const breaker = this.#loadBreaker();
    if (breakerObserve(breaker, observation.status, now, this.#breakerSettings)) this.ctx.storage.kv.put(BREAKER_KEY, breaker);
  }

  /** The current pacing state, for operators and tests. */
  inspect(): PacerState | null {
    return this.#state ?? this.ctx.storage.kv.get<PacerState>(STATE_KEY) ?? null;
  }

  /** The current breaker state, for operators and tests. */
  inspectBreaker(): BreakerState {
    return this.#loadBreaker();
  }

  /**
   * What the project can spend now, read-only: nothing is stored, so looking never moves the pacer (a project never
   * called yet answers its starting state). Sandbox projects use only the sandbox bucket, others primary and events.
   */
  budget(settings: RateLimitSettings | null, projectId: string): ProjectBudget {
    const now = Date.now();
    const stored = this.#state === undefined ? this.ctx.storage.kv.get<PacerState>(STATE_KEY) : undefined;
    // A copy under the merchant's current settings, as the next call would see it; memory and storage stay as they are.
    const state = this.#state ? structuredClone(this.#state) : stored ? restorePacer(stored, now) : initialPacerState(settings, now);
    if (!sameSettings(state, settings)) reconfigure(state, settings);
    const breaker = breakerPosition(this.#loadBreaker(), now);
    return {
      buckets: bucketsOf(projectId).map((bucket) => {
        const budget = bucketBudget(state, bucket, now);
        return { ...budget, bucket, recent429s: budget.recent429s.map((at) => new Date(at).toISOString()) };
      }),
      breaker: { state: breaker.position, since: breaker.since === null ? null : new Date(breaker.since).toISOString() },
    };
  }
}

/** One project's budget as its Durable Object sees it (times ISO 8601 UTC). */
export interface ProjectBudget {
  buckets: (Omit<ReturnType<typeof bucketBudget>, "recent429s"> & { bucket: Bucket; recent429s: string[] })[];
  breaker: { state: BreakerPosition; since: string | null };
}
