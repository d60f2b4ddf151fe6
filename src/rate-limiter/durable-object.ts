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
import { acquire, bucketBudget, initialPacerState, observe, type PacerState, reconfigure } from "./pacer";

const STATE_KEY = "pacer";
const BREAKER_KEY = "breaker";

/**
 * One per Smart Router project (addressed by project id): paces every outbound call of every merchant Worker that uses
 * the project, and holds the project's circuit breaker. Each method runs without awaiting, so calls never interleave,
 * and the token (or the probe) is written to storage before the caller learns it was granted (the output gate holds
 * the answer until the write is durable).
 *
 * Env: `BREAKER_PROBE_INTERVAL_MS` (optional, whole ms) overrides the breaker's probe interval, 10 s by default.
 */
export class ProjectRateLimiter extends DurableObject {
  #state: PacerState | undefined;
  #settingsKey: string | undefined;
  #breaker: BreakerState | undefined;
  readonly #breakerSettings: BreakerSettings;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    this.#breakerSettings = breakerSettingsFrom(env);
  }

  #load(settings: RateLimitSettings | null): PacerState {
    const now = Date.now();
    this.#state ??= this.ctx.storage.kv.get<PacerState>(STATE_KEY) ?? initialPacerState(settings, now);
    const key = JSON.stringify(settings ?? {});
    if (this.#settingsKey !== key) {
      reconfigure(this.#state, settings);
      this.#settingsKey = key;
    }
    return this.#state;
  }

  #save(state: PacerState): void {
    this.ctx.storage.kv.put(STATE_KEY, state);
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
    const state = this.#load(settings);
    const permit = acquire(state, bucket, lane, now);
    if (!permit.granted) return permit;
    this.#save(state);
    if (recordGrant(breaker, now, this.#breakerSettings)) this.ctx.storage.kv.put(BREAKER_KEY, breaker);
    return permit;
  }

  /** Learns from Smart Router's rate-limit headers and 429s, and from its failures (status 0: no answer). */
  observe(observation: RateObservation, settings: RateLimitSettings | null): void {
    const now = Date.now();
    const state = this.#load(settings);
    observe(state, observation, now);
    this.#save(state);
    const breaker = this.#loadBreaker();
    breakerObserve(breaker, observation.status, now, this.#breakerSettings);
    this.ctx.storage.kv.put(BREAKER_KEY, breaker);
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
    const stored = this.#state ?? this.ctx.storage.kv.get<PacerState>(STATE_KEY);
    // A copy under the merchant's current settings, as the next call would see it; the stored state stays as it is.
    const state = stored ? structuredClone(stored) : initialPacerState(settings, now);
    if (stored) reconfigure(state, settings);
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
