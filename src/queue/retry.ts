import { z } from "zod";
import { isMerchantFenced, isStorageError, safeErrorText } from "../db/errors";
import { forgetMerchantShards } from "../db/shards";
import { log } from "../lib/log";
import { SmartRouterError } from "../smart-router/errors";
import { policyDelaySeconds, type RetryPolicy, retryDelaySeconds } from "./backoff";

/** Retry state a message body carries, so waiting never spends the queue's own `max_retries`. */
export const retryState = {
  /** Failed tries so far (absent: none). */
  attempt: z.number().int().min(0).optional(),
  /** When the first try failed: the horizon counts from it. */
  first_attempt_at: z.iso.datetime().optional(),
};
export interface RetryState {
  attempt?: number;
  first_attempt_at?: string;
}

/** A message to try again later, its body, and why. */
export interface Postponed<B extends RetryState> {
  message: Message<unknown>;
  body: B;
  error: unknown;
}

export interface PostponeOptions<B extends RetryState> {
  policy: RetryPolicy;
  /** 1 in production; a test-only RETRY_SCHEDULE_SCALE shrinks delays and horizon alike. */
  scale: number;
  now: number;
  /** Called once for work past the policy's horizon, before its message is acked. */
  deadLetter(item: Postponed<B>, reason: string): Promise<void>;
  /**
   * Where work waiting on our own pacer or breaker goes instead of back on the queue (the webhook consumer parks it in
   * D1 under one wake-up message per merchant); it acks what it took. When it fails, the work goes back on the queue.
   */
  park?(items: readonly Postponed<B>[], hintMs: number | null): Promise<void>;
}

/**
 * While the work's own D1 shard fails, it waits for the shard like it waits for our pacer: no attempt spent and no
 * horizon (the shard coming back ends the wait; nothing accepted is dropped meanwhile), looked at once a minute, so a
 * parked message costs at most one queue operation a minute.
 */
export const STORAGE_WAIT_SECONDS = 60;
/** A write that met a moving merchant's fence waits this long (the fence lasts seconds), then re-reads the directory. */
export const FENCE_WAIT_SECONDS = 5;

const isLocalBackpressure = (error: unknown) => error instanceof SmartRouterError && error.isLocalBackpressure;
/** Our own backpressure (the pacer, an open breaker), the shard's failure or a move's fence: a wait, not a failed try. */
const isWaiting = (error: unknown) => isLocalBackpressure(error) || isStorageError(error) || isMerchantFenced(error);
/** The test-only RETRY_SCHEDULE_SCALE shrinks the shard's wait as it does every policy delay (never below 1 s). */
const waitSeconds = (error: unknown, hintMs: number | null, scale: number) =>
  Math.max(
    1,
    Math.ceil(
      isMerchantFenced(error)
        ? FENCE_WAIT_SECONDS * scale
        : isStorageError(error)
          ? STORAGE_WAIT_SECONDS * scale
          : (hintMs ?? 1_000) / 1000,
    ),
  );
const hintOf = (error: unknown) => (error instanceof SmartRouterError ? error.retryAfterMs : null);
const duration = (ms: number) => (ms >= 3_600_000 ? `${(ms / 3_600_000).toFixed(1)} h` : `${Math.round(ms / 1000)} s`);
const describe = (error: unknown) => safeErrorText(error);

/** Hands waiting work to `park` with the shortest hint among it; answers what it took (nothing when it failed). */
async function parkAll<B extends RetryState>(items: readonly Postponed<B>[], options: PostponeOptions<B>): Promise<Set<Postponed<B>>> {
  if (items.length === 0 || !options.park) return new Set();
  const hints = items.map((item) => hintOf(item.error)).filter((hint) => hint !== null);
  try {
    await options.park(items, hints.length > 0 ? Math.min(...hints) : null);
    return new Set(items);
  } catch (error) {
    log("warn", "queue.park_failed", { policy: options.policy.name, messages: items.length, error: describe(error) });
    return new Set();
  }
}

/**
 * Puts work back for later as a fresh message carrying its retry state, and acks the original: the wait is the
 * policy's (exponential with jitter, a server's hint as a floor), the end is the policy's horizon from the first failed
 * try, past which the work becomes a dead letter. Two waits are not failed tries and have no horizon: our own pacer's
 * "not yet" (local backpressure: the rate budget or an open circuit breaker) waits the pacer's hint and ends when the
 * pacer grants the call (the breaker closes once Smart Router answers a probe); a failing D1 shard waits
 * STORAGE_WAIT_SECONDS a look and ends when the shard answers. So nothing accepted is dropped however long Smart Router
 * or the shard is down. With `park`, the pacer's and the breaker's waits leave the queue altogether (parked in D1 under
 * one wake-up message per merchant, so waiting costs no queue operation per message). Should the queue refuse the new message, the original is retried by the queue instead
 * (spending one of its retries).
 */
export async function postpone<B extends RetryState>(
  queue: Queue,
  items: readonly Postponed<B>[],
  options: PostponeOptions<B>,
): Promise<void> {
  const { policy, scale, now } = options;
  // The merchant's shard may have switched: the next try reads the directory again.
  if (items.some((item) => isMerchantFenced(item.error))) forgetMerchantShards();
  const byDelay = new Map<number, { item: Postponed<B>; body: B }[]>();
  const parkable = options.park ? items.filter((item) => isLocalBackpressure(item.error)) : [];
  const parked = await parkAll(parkable, options);
  for (const item of items) {
    if (parked.has(item)) continue;
    const since = item.body.first_attempt_at ?? new Date(now).toISOString();
    const attempt = item.body.attempt ?? 0;
    const waiting = isWaiting(item.error);
    if (!waiting && now - Date.parse(since) >= policy.horizonMs * scale) {
      const over = duration(now - Date.parse(since));
      await options.deadLetter(item, `${policy.name} gave up after ${attempt + 1} tries over ${over}: ${describe(item.error)}`);
      item.message.ack();
      continue;
    }
    const hintMs = hintOf(item.error);
    const delay = waiting ? waitSeconds(item.error, hintMs, scale) : policyDelaySeconds(policy, attempt + 1, { scale, hintMs });
    const body = { ...item.body, attempt: waiting ? attempt : attempt + 1, first_attempt_at: since };
    byDelay.set(delay, [...(byDelay.get(delay) ?? []), { item, body }]);
  }
  for (const [delaySeconds, all] of byDelay) {
    // sendBatch takes at most 100 messages.
    for (let i = 0; i < all.length; i += 100) {
      const group = all.slice(i, i + 100);
      try {
        await queue.sendBatch(group.map(({ body }) => ({ body, contentType: "json" as const, delaySeconds })));
        for (const { item } of group) item.message.ack();
      } catch (error) {
        log("warn", "queue.postpone_failed", { policy: policy.name, messages: group.length, error: describe(error) });
        for (const { item } of group) item.message.retry({ delaySeconds: retryDelaySeconds(item.message.attempts, hintOf(item.error)) });
      }
    }
  }
}
