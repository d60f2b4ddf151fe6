import type { Database } from "../db/client";
import { safeErrorText } from "../db/errors";
import type { AppConfig, AppEnv } from "../env";
import { log } from "../lib/log";
import { FULFILMENT_RETRY } from "../queue/backoff";
import { parseOrDeadLetter, storeDeadLetter } from "../queue/dead-letters";
import { type FulfillmentMessage, fulfillmentMessageV1, QUEUES } from "../queue/messages";
import { type Postponed, postpone } from "../queue/retry";
import { type DeliveryOutcome, deliverFulfillment } from "./deliver";
import { failFulfillment, LEASE_MS } from "./outbox";

/** Another consumer holds the delivery's lease: look again once it has run out. */
const BUSY_DELAY_SECONDS = LEASE_MS / 1000;

/**
 * Consumes fulfilment nudges: each delivers the outbox row's notification. A failed delivery is tried again under the
 * fulfilment policy (seconds, minutes, then hours, past 3 days); past its horizon the row is `failed` and a dead letter.
 * One message's failure (a secret that does not decrypt, a D1 error) never fails the others in the batch.
 */
export async function consumeFulfillments({
  batch,
  env,
  db,
  config,
  fetcher = fetch,
}: {
  batch: MessageBatch<unknown>;
  env: AppEnv;
  db: Database;
  config: AppConfig;
  fetcher?: typeof fetch;
}) {
  const failed: Postponed<FulfillmentMessage>[] = [];
  for (const message of batch.messages) {
    const nudge = await parseOrDeadLetter(db, batch.queue, message, fulfillmentMessageV1);
    if (!nudge) continue;
    const outcome = await deliverNudge({ db, config, nudge, fetcher });
    if (outcome.kind === "delivered" || outcome.kind === "settled") message.ack();
    else if (outcome.kind === "busy") message.retry({ delaySeconds: BUSY_DELAY_SECONDS });
    else failed.push({ message, body: nudge, error: outcome.cause ?? new Error(outcome.error) });
  }
  await postpone(env.FULFILLMENTS, failed, {
    policy: FULFILMENT_RETRY,
    scale: config.RETRY_SCHEDULE_SCALE,
    now: Date.now(),
    deadLetter: ({ message, body }, reason) => giveUp({ db, message, body, reason }),
  });
}

/** One nudge's delivery, logged unless delivered; an error thrown on the way (a secret that does not decrypt, D1) is a failed attempt. */
async function deliverNudge({
  db,
  config,
  nudge,
  fetcher,
}: {
  db: Database;
  config: AppConfig;
  nudge: FulfillmentMessage;
  fetcher: typeof fetch;
}): Promise<DeliveryOutcome> {
  const target = { merchantId: nudge.merchant_id, transactionId: nudge.transaction_id };
  let outcome: DeliveryOutcome;
  try {
    outcome = await deliverFulfillment({ db, config, ...target, fetcher });
  } catch (error) {
    outcome = { kind: "failed", error: safeErrorText(error), cause: error };
  }
  // A delivered notification logs no line: its outbox row records it (delivered_at, the merchant's HTTP status).
  if (outcome.kind === "delivered") return outcome;
  log(outcome.kind === "failed" ? "warn" : "info", "fulfillment.delivery", {
    merchant_id: target.merchantId,
    transaction_id: target.transactionId,
    outcome: outcome.kind,
    attempt: (nudge.attempt ?? 0) + 1,
    ...(outcome.kind === "failed" ? { error: outcome.error } : {}),
  });
  return outcome;
}

/** Past the policy's horizon: the row is `failed` and the nudge a dead letter. */
async function giveUp({
  db,
  message,
  body,
  reason,
}: {
  db: Database;
  message: Message<unknown>;
  body: FulfillmentMessage;
  reason: string;
}) {
  await failFulfillment({ db, merchantId: body.merchant_id, transactionId: body.transaction_id });
  await storeDeadLetter({ db, id: message.id, queue: QUEUES.fulfillments, body, error: reason, attempts: body.attempt ?? 0 });
  log("error", "fulfillment.gave_up", { merchant_id: body.merchant_id, transaction_id: body.transaction_id, reason });
}
