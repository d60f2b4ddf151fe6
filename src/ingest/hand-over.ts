import type { Database } from "../db/client";
import { safeErrorMessage } from "../db/errors";
import { log } from "../lib/log";
import type { WebhookMessage } from "../queue/messages";
import type { DeliveryQueue } from "./delivery-queue";
import { MIN_WAKEUP_SECONDS, parkDeliveries } from "./parking";

/** Where an admitted delivery now waits for the consumer. */
export type HandedOver = "enqueued" | "parked";

/**
 * Parks a delivery in its merchant's parking (one D1 batch: the row, and a wake-up booked unless one is pending) and
 * sends the wake-up the booking asks for. A wake-up that fails to send is not the delivery's loss: the row is durable and
 * the cron's `parked_deliveries` step wakes parking nobody will wake, after a lease.
 */
async function parkAtEdge(db: Database, queue: DeliveryQueue, message: WebhookMessage): Promise<void> {
  const toWake = await parkDeliveries(db, [message], Date.now(), MIN_WAKEUP_SECONDS);
  if (toWake.length === 0) return;
  await queue.wake(message.merchant_id, MIN_WAKEUP_SECONDS).catch((error: unknown) => {
    log("warn", "webhook.wakeup_failed", { merchant_id: message.merchant_id, error: safeErrorMessage(error) });
  });
}

/**
 * Hands an admitted delivery to the pipeline: the shared queue, or, for a merchant past its queue share
 * (backlog.ts QUEUE_SHARE), its own parking on its shard, so a flood waits where it delays nobody else. Parking that
 * fails (its shard is failing) falls back to the queue. Resolves only once the delivery is durable in one of them;
 * throws when the queue refuses it.
 */
export async function handOver({
  queue,
  db,
  message,
  admission,
}: {
  queue: DeliveryQueue;
  db: Database;
  message: WebhookMessage;
  admission: "queue" | "park";
}): Promise<HandedOver> {
  if (admission === "park") {
    try {
      await parkAtEdge(db, queue, message);
      return "parked";
    } catch (error) {
      log("warn", "webhook.park_failed", { merchant_id: message.merchant_id, error: safeErrorMessage(error) });
    }
  }
  await queue.send(message);
  return "enqueued";
}
