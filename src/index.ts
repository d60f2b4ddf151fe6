import { createApp } from "./app";
import type { AppEnv } from "./env";
import { handleQueue } from "./queue/dispatch";
import { runScheduledWork } from "./scheduled";

const app = createApp();

export { ProjectRateLimiter } from "./rate-limiter/durable-object";

export default {
  fetch: app.fetch,
  queue: handleQueue,
  scheduled: (controller, env, ctx) => ctx.waitUntil(runScheduledWork(env, controller.scheduledTime)),
} satisfies ExportedHandler<AppEnv>;
