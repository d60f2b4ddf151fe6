import { consumeBatchWork } from "../batches/work";
import { openDatabase } from "../db/client";
import { type AppEnv, appConfig } from "../env";
import { consumeDeadLetters, DEAD_LETTER_SOURCES } from "./dead-letter-consumer";
import { consumeFulfillments } from "./fulfillment-consumer";
import { consumeWebhooks } from "./webhook-consumer";

/** Routes a queue batch to its consumer by queue name. */
export async function handleQueue(batch: MessageBatch<unknown>, env: AppEnv): Promise<void> {
  const db = openDatabase(env.DB);
  const config = appConfig(env);
  if (batch.queue in DEAD_LETTER_SOURCES) return consumeDeadLetters(batch, db);
  if (batch.queue.startsWith("smart-router-webhooks")) return consumeWebhooks(batch, env, db, config);
  if (batch.queue.startsWith("smart-router-fulfillments")) return consumeFulfillments(batch, db, config);
  if (batch.queue.startsWith("smart-router-batches")) return consumeBatchWork(batch, env, db, config);
  throw new Error(`no consumer for queue ${batch.queue}`);
}
