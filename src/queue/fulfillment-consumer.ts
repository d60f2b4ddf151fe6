import { z } from "zod";
import type { Database } from "../db/client";
import type { AppConfig } from "../env";
import { deliverFulfillment } from "../fulfillment/deliver";
import { log } from "../lib/log";
import { retryDelaySeconds } from "./backoff";
import { parseOrDeadLetter } from "./dead-letters";

const fulfillmentMessageV1 = z.object({ v: z.literal(1), merchant_id: z.string(), transaction_id: z.string() });

/** Consumes fulfilment nudges: each delivers the outbox row's notification, retried with backoff until the queue gives up. */
export async function consumeFulfillments(batch: MessageBatch<unknown>, db: Database, config: AppConfig, fetcher: typeof fetch = fetch) {
  for (const message of batch.messages) {
    const nudge = await parseOrDeadLetter(db, batch.queue, message, fulfillmentMessageV1);
    if (!nudge) continue;
    const target = { merchantId: nudge.merchant_id, transactionId: nudge.transaction_id };
    const outcome = await deliverFulfillment(db, config, target, fetcher);
    log(outcome.kind === "failed" ? "warn" : "info", "fulfillment.delivery", {
      merchant_id: target.merchantId,
      transaction_id: target.transactionId,
      outcome: outcome.kind,
      attempts: message.attempts,
      ...(outcome.kind === "failed" ? { error: outcome.error } : {}),
    });
    if (outcome.kind === "delivered" || outcome.kind === "settled") message.ack();
    else message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
  }
}
