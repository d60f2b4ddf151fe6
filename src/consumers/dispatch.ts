import { isMerchantFenced, safeErrorMessage } from "../db/errors";
import { forgetMerchantShards, groupByShard, type Shard } from "../db/shards";
import { consumeDeadLetters } from "../dead-letters/consumer";
import { consumeEndpointLanes } from "../endpoints/consumer";
import { type AppEnv, appConfig } from "../env";
import { consumeFulfillments } from "../fulfillment/consumer";
import { consumeWebhooks } from "../ingest/consumer";
import { log } from "../lib/log";
import type { ConsumerInput } from "../queue/consumer";
import { DEAD_LETTER_QUEUES, QUEUES } from "../queue/messages";
import { consumeBatchWork } from "./batch";

type Consumer = (input: ConsumerInput) => Promise<void>;

/** The consumer of a queue by its exact name (wrangler.toml). */
function consumerOf(queue: string): Consumer {
  switch (queue) {
    case QUEUES.webhooks:
      return consumeWebhooks;
    case QUEUES.fulfillments:
      return consumeFulfillments;
    case QUEUES.batches:
      return consumeBatchWork;
    case QUEUES.endpointMessages:
      return consumeEndpointLanes;
    case DEAD_LETTER_QUEUES.webhooks:
    case DEAD_LETTER_QUEUES.fulfillments:
    case DEAD_LETTER_QUEUES.batches:
      return consumeDeadLetters;
    default:
      throw new Error(`no consumer for queue ${queue}`);
  }
}

/** The field of a message body that names its shard: its merchant, or a re-seal page's shard index. */
function shardKeyOf(body: unknown): { merchantId: string } | { shard: number } | null {
  if (typeof body !== "object" || body === null) return null;
  if ("merchant_id" in body && typeof body.merchant_id === "string") return { merchantId: body.merchant_id };
  if ("shard" in body && typeof body.shard === "number") return { shard: body.shard };
  return null;
}

/** The messages of one shard as a batch of their own, so a consumer commits them in that shard's D1 batch. */
function partOf(batch: MessageBatch<unknown>, messages: readonly Message<unknown>[]): MessageBatch<unknown> {
  return {
    queue: batch.queue,
    metadata: batch.metadata,
    messages,
    ackAll: () => {
      for (const message of messages) message.ack();
    },
    retryAll: (options) => {
      for (const message of messages) message.retry(options);
    },
  };
}

/**
 * Routes a queue batch to its consumer, one part per shard (src/db/shards.ts): each part runs against its merchants'
 * database, side by side, and commits its own D1 batch. A part that fails retries its own messages only (those it had
 * not acked yet: a retry after an ack has no effect); the other shards' parts are acked as their consumer decided.
 */
export async function handleQueue(batch: MessageBatch<unknown>, env: AppEnv): Promise<void> {
  const consume = consumerOf(batch.queue);
  const config = appConfig(env);
  const parts = await groupByShard(env, batch.messages, (message) => shardKeyOf(message.body));
  await Promise.all(
    [...parts].map(async ([shard, messages]: [Shard, Message<unknown>[]]) => {
      try {
        await consume({ batch: partOf(batch, messages), env, db: shard.db, config });
      } catch (error) {
        log("error", "queue.shard_part_failed", {
          queue: batch.queue,
          shard: shard.index,
          messages: messages.length,
          // D1's own message for a failed query, never drizzle's (it quotes the bound values: ids, amounts).
          error: safeErrorMessage(error),
        });
        // A write met a moving merchant's fence: the directory is read again, and the retry comes in seconds.
        const fenced = isMerchantFenced(error);
        if (fenced) forgetMerchantShards();
        for (const message of messages) message.retry(fenced ? { delaySeconds: 5 } : undefined);
      }
    }),
  );
}
