import { DurableObject } from "cloudflare:workers";
import type { RateLimitSettings } from "../db/schema";
import type { Bucket, Lane, Permit, RateObservation } from "./limiter";
import { acquire, initialPacerState, observe, type PacerState, reconfigure } from "./pacer";

const STATE_KEY = "pacer";

/**
 * One per Smart Router project (addressed by project id): paces every outbound call of every merchant Worker that uses
 * the project. Each method runs without awaiting, so calls never interleave, and the token is written to storage before
 * the caller learns it was granted (the output gate holds the answer until the write is durable).
 */
export class ProjectRateLimiter extends DurableObject {
  #state: PacerState | undefined;
  #settingsKey: string | undefined;

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

  /** Reserves one call in `bucket` for `lane`, or says how long to wait. */
  acquire(bucket: Bucket, lane: Lane, settings: RateLimitSettings | null): Permit {
    const state = this.#load(settings);
    const permit = acquire(state, bucket, lane, Date.now());
    if (permit.granted) this.#save(state);
    return permit;
  }

  /** Learns from Smart Router's rate-limit headers and 429s. */
  observe(observation: RateObservation, settings: RateLimitSettings | null): void {
    const state = this.#load(settings);
    observe(state, observation, Date.now());
    this.#save(state);
  }

  /** The current pacing state, for operators and tests. */
  inspect(): PacerState | null {
    return this.#state ?? this.ctx.storage.kv.get<PacerState>(STATE_KEY) ?? null;
  }
}
