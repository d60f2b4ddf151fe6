import { and, eq, isNull, lt, or, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { type FulfillmentAttemptError, fulfillments, merchants, transactions } from "../db/schema";
import type { AppConfig } from "../env";
import { signingSecretsOf } from "../merchants/signing-secret";
import { standardWebhookHeaders } from "../outbound/signature";
import { fulfillmentUrlAllowed } from "../outbound/url";
import { presentTransaction } from "../transactions/present";
import { fulfillmentAttemptInsert } from "../transactions/timeline-record";

const LEASE_MS = 60_000;
const TIMEOUT_MS = 10_000;

export type DeliveryOutcome = { kind: "delivered" } | { kind: "settled" } | { kind: "busy" } | { kind: "failed"; error: string };

/**
 * Delivers one fulfilment notification. A lease taken with compare-and-set makes one consumer the sender at a time;
 * the notification's `webhook-id` is the same on every attempt so the merchant can deduplicate a retried one.
 */
export async function deliverFulfillment(
  db: Database,
  config: AppConfig,
  target: { merchantId: string; transactionId: string },
  fetcher: typeof fetch = fetch,
): Promise<DeliveryOutcome> {
  const now = new Date();
  const claimed = await db
    .update(fulfillments)
    .set({ attempts: sql`${fulfillments.attempts} + 1`, leaseUntil: new Date(now.getTime() + LEASE_MS).toISOString() })
    .where(
      and(
        eq(fulfillments.merchantId, target.merchantId),
        eq(fulfillments.transactionId, target.transactionId),
        eq(fulfillments.status, "pending"),
        or(isNull(fulfillments.leaseUntil), lt(fulfillments.leaseUntil, now.toISOString())),
      ),
    )
    .returning()
    .get();
  if (!claimed) {
    const row = await db
      .select({ status: fulfillments.status })
      .from(fulfillments)
      .where(and(eq(fulfillments.merchantId, target.merchantId), eq(fulfillments.transactionId, target.transactionId)))
      .get();
    return row?.status === "pending" ? { kind: "busy" } : { kind: "settled" };
  }

  const merchant = await db.select().from(merchants).where(eq(merchants.id, target.merchantId)).get();
  const transaction = await db
    .select()
    .from(transactions)
    .where(and(eq(transactions.merchantId, target.merchantId), eq(transactions.id, target.transactionId)))
    .get();
  // Every attempt is recorded for the payment's timeline, in the same D1 batch as the outbox row's update.
  const attempt = (outcome: "delivered" | "failed", answer: { httpStatus?: number; errorClass?: FulfillmentAttemptError }) =>
    fulfillmentAttemptInsert(db, {
      ...target,
      attempt: claimed.attempts,
      at: now.toISOString(),
      outcome,
      httpStatus: answer.httpStatus ?? null,
      errorClass: answer.errorClass ?? null,
    });
  const release = async (error: string, answer: { httpStatus?: number; errorClass: FulfillmentAttemptError }) => {
    await db.batch([
      db
        .update(fulfillments)
        .set({ leaseUntil: null, lastError: error })
        .where(and(eq(fulfillments.merchantId, target.merchantId), eq(fulfillments.transactionId, target.transactionId))),
      attempt("failed", answer),
    ]);
  };
  if (!merchant?.fulfillmentUrl || !transaction) {
    const error = merchant?.fulfillmentUrl ? "transaction record missing" : "no fulfillment_url configured";
    await release(error, { errorClass: merchant?.fulfillmentUrl ? "record_missing" : "not_configured" });
    return { kind: "failed", error };
  }
  // A URL stored before the rules of merchants/fulfillment-url.ts (or a loopback one where they are off) is never called.
  if (!fulfillmentUrlAllowed(merchant.fulfillmentUrl, config.ALLOW_LOOPBACK_FULFILLMENT_URLS)) {
    const error = "fulfillment_url is not allowed (https with a DNS host name only); PATCH the merchant, then redrive";
    await release(error, { errorClass: "url_not_allowed" });
    return { kind: "failed", error };
  }

  // During a signing-secret rotation's overlap, both secrets sign (two `v1,` signatures in one header).
  const secrets = await signingSecretsOf(config, merchant, now.getTime());
  const payload = JSON.stringify({
    type: "transaction.captured",
    timestamp: now.toISOString(),
    data: { merchant_id: merchant.id, transaction: presentTransaction(transaction, claimed, true) },
  });
  let error: string;
  let answer: { httpStatus?: number; errorClass: FulfillmentAttemptError };
  try {
    const response = await fetcher(merchant.fulfillmentUrl, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(await standardWebhookHeaders(secrets, claimed.messageId, payload, now.getTime())),
      },
      body: payload,
      // A redirect could lead anywhere, the checks above notwithstanding: a 3xx is a failed attempt.
      redirect: "manual",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    // Never read: what the merchant's server answers (or a server it should not be) stays out of every record and log.
    await response.body?.cancel();
    if (response.ok) {
      await db.batch([
        db
          .update(fulfillments)
          .set({ status: "delivered", deliveredAt: new Date().toISOString(), leaseUntil: null, lastError: null })
          .where(and(eq(fulfillments.merchantId, target.merchantId), eq(fulfillments.transactionId, target.transactionId))),
        attempt("delivered", { httpStatus: response.status }),
      ]);
      return { kind: "delivered" };
    }
    const redirect = response.status >= 300 && response.status < 400;
    error = redirect ? `merchant answered ${response.status} (redirects are not followed)` : `merchant answered ${response.status}`;
    answer = { httpStatus: response.status, errorClass: redirect ? "redirect" : "http_status" };
  } catch (cause) {
    const timedOut = cause instanceof Error && cause.name === "TimeoutError";
    error = timedOut ? "timed out" : "network error";
    answer = { errorClass: timedOut ? "timeout" : "network" };
  }
  await release(error, answer);
  return { kind: "failed", error };
}
