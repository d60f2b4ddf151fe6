import { createApp } from "./app";
import { handleQueue } from "./consumers/dispatch";
import type { AppEnv } from "./env";
import { runScheduledWork } from "./scheduled";

const app = createApp();

export { DeliveryGate } from "./ingest/delivery-gate";
export { ProjectRateLimiter } from "./rate-limiter/durable-object";

// `_ctx` is unused, but kept so that the handlers take what the runtime (and a test standing in for it) passes.
export default {
  fetch: app.fetch,
  queue: (batch, env, _ctx) => handleQueue(batch, env),
  // Awaited, not handed to waitUntil: a failed step fails the invocation, so the Cron Trigger's run is reported as failed.
  scheduled: (controller, env, _ctx) => runScheduledWork(env, controller.scheduledTime),
} satisfies ExportedHandler<AppEnv>;
