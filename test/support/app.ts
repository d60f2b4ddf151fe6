import { env } from "cloudflare:workers";
import { createApp } from "../../src/app";
import { type DeliveryQueue, queueFromBinding } from "../../src/ingest/delivery-queue";
import type { WebhookMessage } from "../../src/queue/messages";

/** The app wired to the real queue binding, recording every message it sent. */
export function appRecordingDeliveries() {
  const sent: WebhookMessage[] = [];
  const app = createApp({
    deliveryQueue: (bindings) => {
      const real = queueFromBinding(bindings.WEBHOOKS);
      return {
        async send(message) {
          await real.send(message);
          sent.push(message);
        },
        wake: (merchantId, delaySeconds) => real.wake(merchantId, delaySeconds),
      };
    },
  });
  return { sent, fetch: (path: string, init: RequestInit = {}) => app.fetch(new Request(`https://edge.test${path}`, init), env) };
}

/** The app wired to a queue that refuses every message, as Cloudflare Queues does when it is unavailable. */
export function appWithRefusingQueue() {
  const refusing: DeliveryQueue = {
    send: () => Promise.reject(new Error("Queue send failed: service unavailable")),
    wake: () => Promise.reject(new Error("Queue send failed: service unavailable")),
  };
  const app = createApp({ deliveryQueue: () => refusing });
  return { fetch: (path: string, init: RequestInit = {}) => app.fetch(new Request(`https://edge.test${path}`, init), env) };
}

/** The app under other vars or secrets (e.g. ADMIN_TOKEN_PREVIOUS, ALLOW_LOOPBACK_FULFILLMENT_URLS), with the real bindings. */
export function appWithVars(vars: Record<string, string | undefined>) {
  const app = createApp();
  const bindings = { ...env, ...vars };
  return (path: string, init: RequestInit = {}) => app.fetch(new Request(`https://edge.test${path}`, init), bindings);
}
