/** Cloudflare Queues accept at most 12 hours of delay on one message. */
export const MAX_QUEUE_DELAY_SECONDS = 43_200;

/** Seconds before the next try: exponential in the attempt, capped, with full jitter; a server's hint is a floor. */
export function retryDelaySeconds(
  attempts: number,
  hintMs: number | null = null,
  random: () => number = Math.random,
  capSeconds = 300,
): number {
  const ceiling = Math.min(2 ** Math.max(0, attempts), capSeconds);
  const jittered = Math.max(1, Math.round(ceiling / 2 + (random() * ceiling) / 2));
  const hinted = hintMs === null ? 0 : Math.ceil(hintMs / 1000);
  return Math.min(Math.max(jittered, hinted), MAX_QUEUE_DELAY_SECONDS);
}

/** How long a kind of work is retried, and how long each wait is. */
export interface RetryPolicy {
  name: string;
  /** Measured from the first attempt: past it, the work is a dead letter. */
  horizonMs: number;
  /** The wait before attempt `attempt + 1` (attempt counts from 1), before jitter and scaling. */
  delaySeconds(attempt: number): number;
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * Verifying a webhook (fetch-back): once the edge answered 200, Smart Router stops retrying, so ours must last as long
 * as its own (smart-router.md §1: about 3 days). Waits double up to 10 minutes and stay there, so after an outage of
 * any length every waiting delivery is tried again within 10 minutes of the API answering (contract: 15).
 */
export const VERIFICATION_RETRY: RetryPolicy = {
  name: "verification",
  horizonMs: 3 * DAY_MS,
  delaySeconds: (attempt) => Math.min(2 ** attempt, 600),
};

/**
 * Notifying the merchant, like Standard Webhooks / Svix: seconds, minutes, then hours, then every 12 hours (the queue's
 * longest delay) until past 3 days: attempts after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then 12 h ×5 (≈ 77.6 h, 12 tries).
 */
const FULFILMENT_SCHEDULE_SECONDS = [5, 300, 1_800, 7_200, 18_000, 36_000];
export const FULFILMENT_RETRY: RetryPolicy = {
  name: "fulfilment",
  horizonMs: 3 * DAY_MS,
  delaySeconds: (attempt) => FULFILMENT_SCHEDULE_SECONDS[attempt - 1] ?? MAX_QUEUE_DELAY_SECONDS,
};

/** A unit of batch work (sync page, refresh) facing 5xx or network errors: the merchant's own request, a day at most. */
export const BATCH_UNIT_RETRY: RetryPolicy = {
  name: "batch unit",
  horizonMs: DAY_MS,
  delaySeconds: (attempt) => Math.min(2 ** attempt, 600),
};

/**
 * The wait before the next attempt under a policy: ±10% jitter (full jitter below the policy's first minute), times
 * `scale` (1 in production; tests and `npm run chaos --outage` shrink the whole schedule), a server's hint as a floor,
 * at least 1 s and at most the queue's limit.
 */
export function policyDelaySeconds(
  policy: RetryPolicy,
  attempt: number,
  { scale = 1, hintMs = null, random = Math.random }: { scale?: number; hintMs?: number | null; random?: () => number } = {},
): number {
  const base = policy.delaySeconds(attempt) * scale;
  const jittered = base < 60 ? base / 2 + (random() * base) / 2 : base * (0.9 + random() * 0.2);
  const hinted = hintMs === null ? 0 : hintMs / 1000;
  return Math.min(MAX_QUEUE_DELAY_SECONDS, Math.max(1, Math.ceil(Math.max(jittered, hinted))));
}
