import { consumeBatchWork } from "../batches/work";
import { openDatabase } from "../db/client";
import { type AppEnv, appConfig } from "../env";
import { consumeDeadLetters, DEAD_LETTER_SOURCES } from "./dead-letter-consumer";
import { consumeFulfillments } from "./fulfillment-consumer";
import { consumeWebhooks } from "./webhook-consumer";

/**
 * Test-only fault switch for `npm run chaos`: the probability (0..1) that a batch fails before any work, as a crashed
 * consumer would. Not in wrangler.toml and never set in production; absent or invalid means 0.
 */
function injectedFailureRate(env: object): number {
  if (!("CHAOS_CONSUMER_FAILURE_RATE" in env)) return 0;
  const rate = Number(env.CHAOS_CONSUMER_FAILURE_RATE);
  return rate > 0 && rate <= 1 ? rate : 0;
}

/** Routes a queue batch to its consumer by queue name. */
export async function handleQueue(batch: MessageBatch<unknown>, env: AppEnv): Promise<void> {
  const db = openDatabase(env.DB);
  const config = appConfig(env);
  if (batch.queue in DEAD_LETTER_SOURCES) return consumeDeadLetters(batch, db);
  // Dead-letter consumers are spared: they are where exhausted retries must land.
  if (Math.random() < injectedFailureRate(env)) throw new Error("chaos: injected consumer failure");
  if (batch.queue.startsWith("smart-router-webhooks")) return consumeWebhooks(batch, env, db, config);
  if (batch.queue.startsWith("smart-router-fulfillments")) return consumeFulfillments(batch, db, config);
  if (batch.queue.startsWith("smart-router-batches")) return consumeBatchWork(batch, env, db, config);
  throw new Error(`no consumer for queue ${batch.queue}`);
}
