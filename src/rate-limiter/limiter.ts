/** Smart Router's three independent rate-limit buckets (smart-router.md §6). */
export const BUCKETS = ["primary", "events", "sandbox"] as const;
export type Bucket = (typeof BUCKETS)[number];

/** Business traffic is interactive; backfills, reconciliation and reports are batch and must never starve it. */
export const LANES = ["interactive", "batch"] as const;
export type Lane = (typeof LANES)[number];

/** `waitedMs`: how long the caller's side waited in place before the grant (rate-limiter/client.ts), absent when at once. */
export type Permit = { granted: true; waitedMs?: number } | { granted: false; retryAfterMs: number };

/** What Smart Router's answer said about its bucket and its health, so the limiter and the breaker can learn. */
export interface RateObservation {
  bucket: Bucket;
  /** The HTTP status, or 0 when no answer came (network error, timeout). */
  status: number;
  limitPerMinute?: number;
  remaining?: number;
  retryAfterMs?: number;
}

/** Paces outbound Smart Router calls for one project. */
export interface RateLimiter {
  acquire(bucket: Bucket, lane: Lane): Promise<Permit>;
  observe(observation: RateObservation): Promise<void>;
}

/** Grants everything: for contexts where no limiter is configured. */
export const unlimited: RateLimiter = {
  acquire: async () => ({ granted: true }),
  observe: async () => {},
};

const isSandboxProject = (projectId: string) => projectId.startsWith("test-");

/** The buckets a project's calls count against: a sandbox project's own one, otherwise primary and events. */
export function bucketsOf(projectId: string): readonly Bucket[] {
  return isSandboxProject(projectId) ? ["sandbox"] : ["primary", "events"];
}

/** The bucket a call counts against: sandbox projects have their own; otherwise event reads are the secondary bucket. */
export function bucketFor(projectId: string, path: string): Bucket {
  if (isSandboxProject(projectId)) return "sandbox";
  return path === "/events" || path.startsWith("/events/") ? "events" : "primary";
}

export interface RateLimitSettings {
  primary_rpm?: number;
  events_rpm?: number;
  sandbox_rpm?: number;
  batch_share?: number;
  /** The webhook edge's limit for this merchant, deliveries per minute (ingest/delivery-limit.ts). */
  webhooks_rpm?: number;
}
