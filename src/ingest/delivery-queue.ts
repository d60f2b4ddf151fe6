import type { WebhookMessage } from "../queue/messages";

/** Where accepted deliveries go; `send` resolves only once the message is durably enqueued. */
export interface DeliveryQueue {
  send(message: WebhookMessage): Promise<void>;
}

/** The Cloudflare Queue producer behind the interface. */
export function queueFromBinding(queue: Queue): DeliveryQueue {
  return {
    async send(message) {
      await queue.send(message, { contentType: "json" });
    },
  };
}
