import { and, eq } from "drizzle-orm";
import type { Database } from "../db/client";
import { type FulfillmentAttemptError, merchants, recordColumns, transactions } from "../db/schema";
import type { AppConfig } from "../env";
import { signingSecretsOf } from "../merchants/signing-secret";
import { type OutboundResult, postSignedWebhook } from "../outbound/client";
import { fulfillmentUrlAllowed } from "../outbound/url";
import { presentTransaction } from "../transactions/present";
import { fulfillmentAttemptInsert } from "../transactions/timeline-record";
import { claimFulfillment, type FulfillmentKey, type FulfillmentRow, markFulfillmentDelivered, releaseFulfillment } from "./outbox";

export type DeliveryOutcome =
  | { kind: "delivered" }
  | { kind: "settled" }
  | { kind: "busy" }
  /** `cause`: the error thrown on the way, when one was (a D1 failure waits for its shard instead of spending a try). */
  | { kind: "failed"; error: string; cause?: unknown };

/** One attempt as the timeline records it: the merchant's HTTP status or an error class, never a body. */
type Attempt =
  | { outcome: "delivered"; httpStatus: number }
  | { outcome: "failed"; error: string; httpStatus?: number; errorClass: FulfillmentAttemptError };

/** A notification ready to send, or the failed attempt that stands for it when it cannot be sent. */
type Notification = { url: string; messageId: string; payload: string; secrets: string[] } | { unsendable: Attempt };

/**
 * Delivers one fulfilment notification. A lease taken with compare-and-set makes one consumer the sender at a time;
 * the notification's `webhook-id` is the same on every attempt so the merchant can deduplicate a retried one.
 */
export async function deliverFulfillment({
  db,
  config,
  merchantId,
  transactionId,
  fetcher = fetch,
}: { db: Database; config: AppConfig; fetcher?: typeof fetch } & FulfillmentKey): Promise<DeliveryOutcome> {
  const key = { merchantId, transactionId };
  const now = new Date();
  const claim = await claimFulfillment({ db, now, ...key });
  if (claim.kind !== "claimed") return claim;
  const notification = await buildNotification({ db, config, key, row: claim.row, now });
  const attempt =
    "unsendable" in notification
      ? notification.unsendable
      : attemptOf(await postSignedWebhook({ ...notification, now: now.getTime(), receiver: "merchant", fetcher }));
  await recordAttempt({ db, key, number: claim.row.attempts, at: now, attempt });
  return attempt.outcome === "delivered" ? { kind: "delivered" } : { kind: "failed", error: attempt.error };
}

/** The signed `transaction.captured` notification of a claimed row, unless its merchant, record or URL rules it out. */
async function buildNotification({
  db,
  config,
  key,
  row,
  now,
}: {
  db: Database;
  config: AppConfig;
  key: FulfillmentKey;
  row: FulfillmentRow;
  now: Date;
}): Promise<Notification> {
  const merchant = await db.select().from(merchants).where(eq(merchants.id, key.merchantId)).get();
  const transaction = await db
    .select(recordColumns)
    .from(transactions)
    .where(and(eq(transactions.merchantId, key.merchantId), eq(transactions.id, key.transactionId)))
    .get();
  if (!merchant?.fulfillmentUrl) return { unsendable: failed("no fulfillment_url configured", "not_configured") };
  if (!transaction) return { unsendable: failed("transaction record missing", "record_missing") };
  // A URL stored before the rules of outbound/url.ts (or a loopback one where they are off) is never called.
  if (!fulfillmentUrlAllowed(merchant.fulfillmentUrl, config.ALLOW_LOOPBACK_FULFILLMENT_URLS)) {
    const error = "fulfillment_url is not allowed (https with a DNS host name only); PATCH the merchant, then redrive";
    return { unsendable: failed(error, "url_not_allowed") };
  }
  // During a signing-secret rotation's overlap, both secrets sign (two `v1,` signatures in one header).
  const secrets = await signingSecretsOf(config, merchant, now.getTime());
  const payload = JSON.stringify({
    type: "transaction.captured",
    timestamp: now.toISOString(),
    data: { merchant_id: merchant.id, transaction: presentTransaction(transaction, row, true) },
  });
  return { url: merchant.fulfillmentUrl, messageId: row.messageId, payload, secrets };
}

const failed = (error: string, errorClass: FulfillmentAttemptError): Attempt => ({ outcome: "failed", error, errorClass });

/** The attempt the outbound client's result makes. */
function attemptOf(result: OutboundResult): Attempt {
  if (result.kind === "delivered") return { outcome: "delivered", httpStatus: result.status };
  return { outcome: "failed", error: result.error, httpStatus: "status" in result ? result.status : undefined, errorClass: result.reason };
}

/**
 * Records the attempt for the payment's timeline and settles the outbox row, in one D1 batch. A delivering attempt is
 * recorded by the outbox row itself (`markFulfillmentDelivered`, 0028); a failed one gets its own row.
 */
async function recordAttempt({
  db,
  key,
  number,
  at,
  attempt,
}: {
  db: Database;
  key: FulfillmentKey;
  number: number;
  at: Date;
  attempt: Attempt;
}) {
  if (attempt.outcome === "delivered") {
    await markFulfillmentDelivered({ db, ...key, httpStatus: attempt.httpStatus });
    return;
  }
  await db.batch([
    releaseFulfillment({ db, ...key, error: attempt.error }),
    fulfillmentAttemptInsert(db, {
      ...key,
      attempt: number,
      at: at.toISOString(),
      outcome: attempt.outcome,
      httpStatus: attempt.httpStatus ?? null,
      errorClass: attempt.errorClass,
    }),
  ]);
}
