import { and, eq } from "drizzle-orm";
import type { Database } from "../db/client";
import { endpoints, merchants } from "../db/schema";
import type { AppConfig } from "../env";
import { log } from "../lib/log";
import { postSignedWebhook } from "../outbound/client";
import { fulfillmentUrlAllowed } from "../outbound/url";
import { FULFILMENT_RETRY, policyDelaySeconds } from "../queue/backoff";
import { openEndpointDisabledAlert } from "./alert";
import { messageBody } from "./body";
import { type AttemptResult, claimHead, disableIfFailing, type Lane, type MessageRow, markDelivered, markFailed } from "./outbox";
import { type EndpointRow, endpointSecretsOf } from "./secrets";

/**
 * Messages one nudge sends one after another in its lane: the loop's end. A longer lane is nudged again, so one busy
 * transaction never holds a consumer for long.
 */
export const MESSAGES_PER_NUDGE = 20;

/** What a lane's nudge came to: nothing more to send now, a retry due in `delaySeconds`, or more ready to send. */
export type LaneOutcome = { kind: "idle" } | { kind: "waiting"; delaySeconds: number } | { kind: "more" };

/** An attempt's verdict for the lane: go on to the next message, or stop (a retry is scheduled, or the endpoint stopped). */
type Settled = { next: true } | { next: false; outcome: LaneOutcome };

interface LaneContext {
  db: Database;
  config: AppConfig;
  endpoint: EndpointRow;
  secrets: string[];
  fetcher: typeof fetch;
}

/**
 * Sends a lane's due messages in order: each is claimed as the lane's head (so n+1 never goes before n was answered
 * 2xx or given up), posted signed, and settled before the next is claimed. A paused, disabled or deleted endpoint
 * sends nothing (its messages stay pending). Retries follow the fulfilment schedule; its horizon (≈ 3 days from the
 * first attempt) gives a message up as `failed`, and the next one goes.
 */
export async function deliverLane({
  db,
  config,
  lane,
  fetcher = fetch,
}: {
  db: Database;
  config: AppConfig;
  lane: Lane;
  fetcher?: typeof fetch;
}): Promise<LaneOutcome> {
  const endpoint = await db
    .select()
    .from(endpoints)
    .where(and(eq(endpoints.id, lane.endpointId), eq(endpoints.merchantId, lane.merchantId)))
    .get();
  if (endpoint?.status !== "enabled") return { kind: "idle" };
  const context: LaneContext = { db, config, endpoint, secrets: await endpointSecretsOf(config, endpoint, Date.now()), fetcher };
  for (let sent = 0; sent < MESSAGES_PER_NUDGE; sent++) {
    const now = Date.now();
    const message = await claimHead({ db, lane, now });
    if (!message) return { kind: "idle" };
    const result = await attempt(context, message, now);
    const settled = await settle(context, message, result, now);
    if (!settled.next) return settled.outcome;
  }
  return { kind: "more" };
}

/** One signed POST of a claimed message; a message that cannot be sent (its URL refused, its change gone) is a failed attempt. */
async function attempt(
  { db, config, endpoint, secrets, fetcher }: LaneContext,
  message: MessageRow,
  now: number,
): Promise<AttemptResult & { ok: boolean }> {
  // A URL stored before the rules (or a loopback one where they are off) is never called.
  if (!fulfillmentUrlAllowed(endpoint.url, config.ALLOW_LOOPBACK_FULFILLMENT_URLS)) {
    return { ok: false, httpStatus: null, error: "url is not allowed (https with a DNS host name only); PATCH the endpoint" };
  }
  const payload = await messageBody({ db, message });
  if (payload === null) return { ok: false, httpStatus: null, error: "the change this message carries is no longer stored" };
  const result = await postSignedWebhook({
    url: endpoint.url,
    messageId: message.id,
    payload,
    secrets,
    now,
    receiver: "endpoint",
    fetcher,
  });
  if (result.kind === "delivered") return { ok: true, httpStatus: result.status, error: null };
  return { ok: false, httpStatus: "status" in result ? result.status : null, error: result.error };
}

/** Records an attempt; a failure schedules the retry or gives the message up, and may disable a failing endpoint. */
async function settle(context: LaneContext, message: MessageRow, result: AttemptResult & { ok: boolean }, now: number): Promise<Settled> {
  const { db, config, endpoint } = context;
  if (result.ok) {
    await db.batch(markDelivered({ db, message, result, now }));
    return { next: true };
  }
  const scale = config.RETRY_SCHEDULE_SCALE;
  const horizonMs = FULFILMENT_RETRY.horizonMs * scale;
  const firstAttempt = Date.parse(message.firstAttemptAt ?? new Date(now).toISOString());
  const givenUp = now - firstAttempt >= horizonMs;
  const delaySeconds = policyDelaySeconds(FULFILMENT_RETRY, message.attempts, { scale });
  await db.batch(markFailed({ db, message, result, retryAt: givenUp ? null : now + delaySeconds * 1000, now }));
  log(givenUp ? "error" : "warn", givenUp ? "endpoint.message_gave_up" : "endpoint.delivery_failed", {
    merchant_id: message.merchantId,
    endpoint_id: message.endpointId,
    transaction_id: message.transactionId,
    sequence: message.sequence,
    attempt: message.attempts,
    error: result.error,
  });
  // Nothing but failures for the fulfilment horizon: the endpoint is disabled and the merchant alerted.
  if (await disableIfFailing({ db, endpointId: endpoint.id, failingBefore: now - horizonMs, now })) {
    const settings = await db
      .select({ settings: merchants.alertSettings })
      .from(merchants)
      .where(eq(merchants.id, endpoint.merchantId))
      .get();
    await openEndpointDisabledAlert({ db, endpoint, settings: settings?.settings ?? null, now });
    return { next: false, outcome: { kind: "idle" } };
  }
  return givenUp ? { next: true } : { next: false, outcome: { kind: "waiting", delaySeconds } };
}
