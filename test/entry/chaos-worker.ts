/**
 * The worker as `npm run chaos` runs it (scripts/stack.mjs passes this entry to `wrangler dev`): the production worker
 * with one test-only fault switch, CHAOS_CONSUMER_FAILURE_RATE, the probability (0..1) that a queue batch fails before
 * any work, as a crashed consumer would. Never deployed; absent or invalid means 0.
 */

import { DEAD_LETTER_SOURCES } from "../../src/dead-letters/consumer";
import type { AppEnv } from "../../src/env";
import worker from "../../src/index";

export { DeliveryGate } from "../../src/ingest/delivery-gate";
export { ProjectRateLimiter } from "../../src/rate-limiter/durable-object";

type ChaosEnv = AppEnv & { CHAOS_CONSUMER_FAILURE_RATE?: string };

function injectedFailureRate(env: ChaosEnv): number {
  const rate = Number(env.CHAOS_CONSUMER_FAILURE_RATE);
  return rate > 0 && rate <= 1 ? rate : 0;
}

export default {
  ...worker,
  async queue(batch, env, ctx) {
    // Dead-letter consumers are spared: they are where exhausted retries must land.
    if (!(batch.queue in DEAD_LETTER_SOURCES) && Math.random() < injectedFailureRate(env)) {
      throw new Error("chaos: injected consumer failure");
    }
    await worker.queue(batch, env, ctx);
  },
} satisfies ExportedHandler<ChaosEnv>;
