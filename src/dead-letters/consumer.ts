import { and, eq } from "drizzle-orm";
import { failBatch } from "../batches/batches";
import { events } from "../db/schema";
import { failFulfillment } from "../fulfillment/outbox";
import { log } from "../lib/log";
import type { ConsumerInput } from "../queue/consumer";
import { storeDeadLetter } from "../queue/dead-letters";
import { DEAD_LETTER_QUEUES, QUEUES } from "../queue/messages";

/** Which queue a dead-letter queue belongs to. */
export const DEAD_LETTER_SOURCES: Record<string, string> = {
  [DEAD_LETTER_QUEUES.webhooks]: QUEUES.webhooks,
  [DEAD_LETTER_QUEUES.fulfillments]: QUEUES.fulfillments,
  [DEAD_LETTER_QUEUES.batches]: QUEUES.batches,
};

function field(body: unknown, name: string): string | null {
  if (typeof body !== "object" || body === null || !(name in body)) return null;
  const value = (body as Record<string, unknown>)[name];
  return typeof value === "string" ? value : null;
}

/** Stores each message the queue gave up on, with the last error we recorded for it, and marks a fulfilment failed. */
export async function consumeDeadLetters({ batch, db }: Pick<ConsumerInput, "batch" | "db">): Promise<void> {
  const source = DEAD_LETTER_SOURCES[batch.queue] ?? batch.queue;
  for (const message of batch.messages) {
    const merchantId = field(message.body, "merchant_id");
    const eventId = field(message.body, "event_id");
    const transactionId = field(message.body, "transaction_id");
    let error = "retries exhausted";
    if (merchantId && eventId) {
      const row = await db
        .select({ detail: events.detail })
        .from(events)
        .where(and(eq(events.merchantId, merchantId), eq(events.id, eventId)))
        .get();
      if (row?.detail) error = row.detail;
    }
    if (merchantId && transactionId) {
      const row = await failFulfillment({ db, merchantId, transactionId });
      if (row?.lastError) error = row.lastError;
    }
    const batchId = field(message.body, "batch_id");
    // A unit of batch work that failed for good fails its batch: it must not stay `running` for ever.
    if (batchId) await failBatch({ db, batchId, reason: `a unit of work failed for good: ${error}` });
    await storeDeadLetter({ db, id: message.id, queue: source, body: message.body, error, attempts: message.attempts, merchantId });
    log("error", "dead_letter.stored", { queue: source, merchant_id: merchantId, event_id: eventId, transaction_id: transactionId, error });
    message.ack();
  }
}
