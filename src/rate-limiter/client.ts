import type { RateLimitSettings } from "../db/schema";
import type { AppEnv } from "../env";
import { type RateLimiter, unlimited } from "./limiter";

/** The limiter for one Smart Router project. Until the pacing Durable Object lands this grants every call. */
export function limiterFor(_env: AppEnv, _projectId: string, _settings: RateLimitSettings | null): RateLimiter {
  return unlimited;
}
