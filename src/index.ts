import { createApp } from "./app";
import type { AppEnv } from "./env";
import { handleQueue } from "./queue/dispatch";
import { runScheduledWork } from "./scheduled";

const app = createApp();

export { ProjectRateLimiter } from "./rate-limiter/durable-object";

const worker: ExportedHandler<AppEnv> = {
  fetch: app.fetch,
  queue: (batch, env) => handleQueue(batch, env),
  scheduled: (controller, env, ctx) => ctx.waitUntil(runScheduledWork(env, controller.scheduledTime)),
};

export default worker;
