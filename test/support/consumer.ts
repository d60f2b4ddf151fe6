import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { AppEnv } from "../../src/env";
import worker from "../../src/index";
import type { WebhookMessage } from "../../src/queue/messages";

/** The queue message the webhook edge would have written for a delivery of this Smart Router event. */
export function deliveryOf(merchantId: string, event: { id: string; name: string }): WebhookMessage {
  return {
    v: 1,
    merchant_id: merchantId,
    event_id: event.id,
    event_type: event.name,
    received_at: new Date().toISOString(),
    delivery_id: crypto.randomUUID(),
  };
}

/** Hands these messages to the worker's queue handler as one batch of the webhooks queue (with `bindings`, the test's env unless given); answers what it acked and retried. */
export async function consume(messages: WebhookMessage[], bindings: AppEnv = env as AppEnv) {
  const batch = createMessageBatch<WebhookMessage>(
    "smart-router-webhooks",
    messages.map((body, index) => ({ id: `msg-${index}-${crypto.randomUUID()}`, timestamp: new Date(), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue?.(batch as MessageBatch<unknown>, bindings, ctx);
  return getQueueResult(batch, ctx);
}
