import { consumeBatchWork } from "../batches/work";
import { openDatabase } from "../db/client";
import { type AppEnv, appConfig } from "../env";
import { consumeDeadLetters } from "./dead-letter-consumer";
import { consumeFulfillments } from "./fulfillment-consumer";
import { consumeWebhooks } from "./webhook-consumer";

/** Routes a queue batch to its consumer by the queue's exact name (wrangler.toml). */
export async function handleQueue(batch: MessageBatch<unknown>, env: AppEnv): Promise<void> {
  const db = openDatabase(env.DB);
  const config = appConfig(env);
  switch (batch.queue) {
    case "smart-router-webhooks":
      return consumeWebhooks(batch, env, db, config);
    case "smart-router-fulfillments":
      return consumeFulfillments(batch, env, db, config);
    case "smart-router-batches":
      return consumeBatchWork(batch, env, db, config);
    case "smart-router-webhooks-dlq":
    case "smart-router-fulfillments-dlq":
    case "smart-router-batches-dlq":
      return consumeDeadLetters(batch, db);
    default:
      throw new Error(`no consumer for queue ${batch.queue}`);
  }
}
