// Payments of the demo mix (scripts/stack.mjs SCENARIOS) made in the Smart Router emulator in this process, their webhooks
// turned into queue messages for the bundled worker's queue handler: the real path from a payment to D1, without the
// edge in front. Used by the storage section and the soak run (scripts/soak.mjs).
import { randomUUID } from "node:crypto";
import { UNLIMITED } from "./emulator.mjs";
import "./ts-resolve.mjs";

const { createSandbox } = await import("../../../sandbox/index.ts");

export const QUEUE = "smart-router-webhooks";

/**
 * The emulator (time scale 0.001), answering every webhook 204 and handing it to `onDelivery({ merchantId, event_id,
 * event_type })`, the merchant being the last segment of the endpoint's URL. Control calls wait while the promise given
 * to `pauseWhile` runs (a queue handler call), so timed consumer work never shares the CPU with driving payments.
 * `transport`, when given, takes each webhook request instead (the cost section sends them on to the worker's edge).
 */
export function demoSandbox({ onDelivery, timeScale = 0.001, transport }) {
  let paused = Promise.resolve();
  const sandbox = createSandbox({
    timeScale,
    transport:
      transport ??
      (async (request) => {
        const body = await request.json();
        const merchantId = decodeURIComponent(new URL(request.url).pathname.split("/").pop());
        onDelivery({ merchantId, event_id: body.event_id, event_type: body.event_type });
        return new Response(null, { status: 204 });
      }),
  });
  const control = async (pathname, { method, body } = {}) => {
    await paused;
    const response = await sandbox.fetch(
      new Request(`http://smart-router.sandbox/_sandbox${pathname}`, {
        method: method ?? (body === undefined ? "GET" : "POST"),
        headers: { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  };
  return {
    sandbox,
    control,
    fetch: (request) => sandbox.fetch(request),
    pauseWhile(promise) {
      paused = promise.then(
        () => undefined,
        () => undefined,
      );
    },
    /**
     * A merchant in the worker and its project in the emulator, rates unlimited on both sides, its webhooks pointed at
     * the edge; answers the shop `makePayment` drives, `quiet()` (nothing waiting on a timer, parked or in flight) and
     * `truth()` (every transaction of the project as the emulator holds it).
     */
    async openMerchant(worker, merchantId, projectId = `test-proj_${merchantId.replace(/[^A-Za-z0-9]/g, "")}`) {
      const secretKey = `sk_test_${randomUUID().replaceAll("-", "")}`;
      await control("/projects", {
        body: {
          project_id: projectId,
          secret_key: secretKey,
          rates: { primary: UNLIMITED, events: UNLIMITED, sandbox: UNLIMITED, burst: 1000 },
        },
      });
      const { api_key: apiKey } = await worker.createMerchant(merchantId, projectId, secretKey);
      await worker.admin(`/admin/merchants/${merchantId}`, {
        method: "PATCH",
        body: { rate_limits: { primary_rpm: UNLIMITED, events_rpm: UNLIMITED, sandbox_rpm: UNLIMITED } },
      });
      await control(`/projects/${projectId}/webhooks`, { body: { url: `https://edge.bench/webhooks/smart-router/${merchantId}` } });
      const project = `/projects/${projectId}`;
      return {
        merchantId,
        projectId,
        project,
        /** The merchant's status API key (shown once by the admin API). */
        apiKey,
        shop: {
          pay: async (input) => (await control(`${project}/transactions`, { body: input })).body.transaction,
          transaction: async (id) => (await control(`${project}/transactions/${id}`)).body.transaction,
          act: (id, action, body = {}) => control(`${project}/transactions/${id}/${action}`, { body }),
        },
        truth: async () => (await control(`${project}/truth`)).body.transactions,
        async quiet() {
          const { backlog } = (await control(`${project}/counters`)).body;
          return backlog.timers === 0 && backlog.parked === 0 && backlog.in_flight === 0;
        },
      };
    },
    close: () => sandbox.close(),
  };
}

/**
 * Hands deliveries (at most a queue batch) to the worker's queue handler as one batch of messages; answers the time
 * inside the call and the deliveries whose messages it asked to retry (`retried` counts them; each one's delay in
 * `retryDelaySeconds`). A delivery's body is made
 * on its first hand-over and kept on it (`delivery.body`), so a retry carries the same body, its `attempts` counting
 * `delivery.retries`, as the queue's redelivery would; a delivery given with a `body` (a message the worker itself sent)
 * is handed over as it is. Any outcome but "ok" throws, with the worker's last log lines.
 */
export async function queueBatch(worker, handler, deliveries, { pauseWhile = () => {}, queue = QUEUE } = {}) {
  const messages = deliveries.map((delivery) => {
    const { merchantId, event_id, event_type } = delivery;
    delivery.body ??= {
      v: 1,
      merchant_id: merchantId,
      event_id,
      event_type,
      received_at: new Date().toISOString(),
      delivery_id: randomUUID(),
    };
    return { id: randomUUID().replaceAll("-", ""), timestamp: new Date(), attempts: (delivery.retries ?? 0) + 1, body: delivery.body };
  });
  const started = performance.now();
  const call = handler.queue(queue, messages);
  pauseWhile(call);
  const result = await call;
  const ms = performance.now() - started;
  if (result.outcome !== "ok") throw new Error(`queue handler outcome ${result.outcome}:\n${worker.logs.recent.join("\n")}`);
  // The delay each retry asked for (seconds; 0 when none), kept on its delivery as `retryDelaySeconds`.
  const again = new Map(
    result.retryBatch?.retry
      ? messages.map((message) => [message.id, result.retryBatch.delaySeconds ?? 0])
      : result.retryMessages.map((r) => [r.msgId, r.delaySeconds ?? 0]),
  );
  const retry = deliveries.filter((delivery, index) => {
    if (!again.has(messages[index].id)) return false;
    delivery.retryDelaySeconds = again.get(messages[index].id);
    return true;
  });
  return { ms, retried: retry.length, retry };
}
