import { log } from "../lib/log";
import { SmartRouterError } from "../smart-router/errors";
import { retryDelaySeconds } from "./backoff";
import { sendAll } from "./send";

/** A message to put back for later, and why. */
export interface Postponed {
  message: Message<unknown>;
  error: unknown;
}

const hintOf = (error: unknown) => (error instanceof SmartRouterError ? error.retryAfterMs : null);

/**
 * Puts messages back for later. When our own pacer asked us to wait, nothing failed: those bodies go back on the queue as
 * fresh messages with the pacer's delay and the originals are acked, so waiting never spends the retries that lead to the
 * dead-letter queue. Real failures use `retry()` with exponential backoff (a server's hint as a floor).
 */
export async function tryLater(queue: Queue, postponed: readonly Postponed[]): Promise<void> {
  const waiting = postponed.filter((p) => p.error instanceof SmartRouterError && p.error.isLocalBackpressure);
  let deferred = false;
  if (waiting.length > 0) {
    const delaySeconds = Math.min(43_200, Math.max(1, ...waiting.map((p) => Math.ceil((hintOf(p.error) ?? 1_000) / 1000))));
    try {
      await sendAll(
        queue,
        waiting.map((p) => p.message.body),
        delaySeconds,
      );
      deferred = true;
    } catch (error) {
      log("warn", "queue.defer_failed", { messages: waiting.length, error: String(error) });
    }
  }
  for (const { message, error } of postponed) {
    if (deferred && waiting.some((p) => p.message === message)) message.ack();
    else message.retry({ delaySeconds: retryDelaySeconds(message.attempts, hintOf(error)) });
  }
}
