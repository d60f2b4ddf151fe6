import type { WebhookMessage } from "../queue/messages";
import { wakeupOf } from "./parking";

/** Where accepted deliveries go; `send` resolves only once the message is durably enqueued. */
export interface DeliveryQueue {
  send(message: WebhookMessage): Promise<void>;
  /** Sends the wake-up of a merchant's parked deliveries (ingest/parking.ts), due in `delaySeconds`. */
  wake(merchantId: string, delaySeconds: number): Promise<void>;
}

/** The Cloudflare Queue producer behind the interface. */
export function queueFromBinding(queue: Queue): DeliveryQueue {
  return {
    async send(message) {
      await queue.send(message, { contentType: "json" });
    },
    async wake(merchantId, delaySeconds) {
      await queue.send(wakeupOf(merchantId), { contentType: "json", delaySeconds });
    },
  };
}
