import type { AppEnv } from "../env";
import type { ProjectBudget } from "./durable-object";
import type { RateLimiter, RateLimitSettings } from "./limiter";

/** Waits this short are taken in place; longer ones go back to the caller, which requeues its work with the delay. */
const INLINE_WAIT_LIMIT_MS = 200;

/** The pacing Durable Object of one Smart Router project, behind the RateLimiter interface. */
export function limiterFor(env: AppEnv, projectId: string, settings: RateLimitSettings | null): RateLimiter {
  const stub = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(projectId));
  return {
    async acquire(bucket, lane) {
      // Ends after at most three asks; a longer wait (a 429's pause, an open breaker) goes back to the caller at once.
      let waitedMs = 0;
      for (let attempt = 0; ; attempt++) {
        const permit = await stub.acquire(bucket, lane, settings);
        if (permit.granted) return waitedMs > 0 ? { granted: true, waitedMs } : permit;
        if (permit.retryAfterMs > INLINE_WAIT_LIMIT_MS || attempt >= 2) return permit;
        await new Promise((resolve) => setTimeout(resolve, permit.retryAfterMs));
        waitedMs += permit.retryAfterMs;
      }
    },
    async observe(observation) {
      await stub.observe(observation, settings);
    },
  };
}

/** The pacing and breaker state of one Smart Router project, read without spending or changing anything (`GET /v1/budget`). */
export function budgetOf(env: AppEnv, projectId: string, settings: RateLimitSettings | null): Promise<ProjectBudget> {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(projectId)).budget(settings, projectId);
}
