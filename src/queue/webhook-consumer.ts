import { inList } from "../db/bulk";
import type { Database } from "../db/client";
import { merchants } from "../db/schema";
import type { AppConfig, AppEnv } from "../env";
import { type EventRecord, settledEvents } from "../events/inbox";
import { log } from "../lib/log";
import { SmartRouterError } from "../smart-router/errors";
import { smartRouterFor } from "../smart-router/for-merchant";
import { applySnapshots, type VerifiedSnapshot } from "../transactions/apply";
import { type Verification, verifyEvents } from "../verification/fetch-back";
import { retryDelaySeconds } from "./backoff";
import { parseOrDeadLetter, storeDeadLetter } from "./dead-letters";
import { type WebhookMessage, webhookMessageV1 } from "./messages";
import { tryLater } from "./retry";
import { sendAll } from "./send";

/**
 * Consumes a batch of webhook deliveries: verifies each event by fetching it back from Smart Router, then applies
 * every verified snapshot and inbox outcome in one D1 batch, and acks only after that batch committed.
 */
export async function consumeWebhooks(batch: MessageBatch<unknown>, env: AppEnv, db: Database, config: AppConfig): Promise<void> {
  const now = new Date().toISOString();
  const valid: { message: Message<unknown>; body: WebhookMessage }[] = [];
  for (const message of batch.messages) {
    const body = await parseOrDeadLetter(db, batch.queue, message, webhookMessageV1);
    if (body) valid.push({ message, body });
  }
  if (valid.length === 0) return;

  const merchantIds = [...new Set(valid.map((v) => v.body.merchant_id))];
  const merchantRows = new Map((await db.select().from(merchants).where(inList(merchants.id, merchantIds))).map((row) => [row.id, row]));
  const settled = await settledEvents(
    db,
    valid.map((v) => ({ merchantId: v.body.merchant_id, id: v.body.event_id })),
  );

  // One fetch per distinct (merchant, event); duplicates inside the batch share it.
  const pending = new Map<
    string,
    { merchantId: string; eventId: string; deliveries: { message: Message<unknown>; body: WebhookMessage }[] }
  >();
  const inbox: EventRecord[] = [];
  const toAck: Message<unknown>[] = [];
  for (const item of valid) {
    const { merchant_id: merchantId, event_id: eventId } = item.body;
    if (!merchantRows.has(merchantId)) {
      await storeDeadLetter(db, {
        id: item.message.id,
        queue: batch.queue,
        body: item.body,
        error: "merchant no longer exists",
        attempts: item.message.attempts,
      });
      item.message.ack();
      continue;
    }
    if (settled.has(merchantId, eventId)) {
      inbox.push({
        merchantId,
        eventId,
        name: null,
        transactionId: null,
        firedAt: null,
        outcome: "pending",
        detail: null,
        deliveries: 1,
        receivedAt: item.body.received_at,
        now,
      });
      toAck.push(item.message);
      continue;
    }
    const key = `${merchantId}\u0000${eventId}`;
    const entry = pending.get(key) ?? { merchantId, eventId, deliveries: [] };
    entry.deliveries.push(item);
    pending.set(key, entry);
  }

  const entries = [...pending.values()];
  const verifications = new Map<string, Verification>();
  const byMerchant = Map.groupBy(entries, (entry) => entry.merchantId);
  await Promise.all(
    [...byMerchant].map(async ([merchantId, group]) => {
      const merchant = merchantRows.get(merchantId);
      if (!merchant) return;
      const client = await smartRouterFor(env, config, merchant, "interactive");
      const verified = await verifyEvents(
        client,
        merchant.smartRouterProjectId,
        group.map((entry) => entry.eventId),
      );
      for (const [eventId, verification] of verified) verifications.set(`${merchantId}\u0000${eventId}`, verification);
    }),
  );

  const snapshots: VerifiedSnapshot[] = [];
  const toRetry: { message: Message<unknown>; error: SmartRouterError }[] = [];
  for (const entry of entries) {
    const verification = verifications.get(`${entry.merchantId}\u0000${entry.eventId}`) ?? {
      kind: "retry",
      error: new SmartRouterError("network", "not verified"),
    };
    const first = entry.deliveries[0];
    if (!first) continue;
    const base = {
      merchantId: entry.merchantId,
      eventId: entry.eventId,
      deliveries: entry.deliveries.length,
      receivedAt: first.body.received_at,
      now,
    };
    if (verification.kind === "retry") {
      for (const delivery of entry.deliveries) toRetry.push({ message: delivery.message, error: verification.error });
      inbox.push({
        ...base,
        deliveries: 0,
        name: first.body.event_type,
        transactionId: null,
        firedAt: null,
        outcome: "pending",
        detail: verification.error.message,
      });
      continue;
    }
    for (const delivery of entry.deliveries) toAck.push(delivery.message);
    if (verification.kind === "rejected") {
      inbox.push({
        ...base,
        name: first.body.event_type,
        transactionId: null,
        firedAt: null,
        outcome: "rejected",
        detail: verification.detail,
      });
      continue;
    }
    const { event } = verification;
    const transaction = event.data?.transaction;
    if (!transaction) {
      inbox.push({
        ...base,
        name: event.name,
        transactionId: null,
        firedAt: event.fired_at,
        outcome: "ignored",
        detail: "not a transaction event",
      });
      continue;
    }
    snapshots.push({
      merchantId: entry.merchantId,
      snapshot: transaction,
      source: { eventId: event.id, eventName: event.name, firedAt: event.fired_at },
      inbox: base,
    });
  }

  const fulfillmentConfigured = (merchantId: string) => Boolean(merchantRows.get(merchantId)?.fulfillmentUrl);
  try {
    const applied = await applySnapshots(db, { snapshots, inbox, fulfillmentConfigured, now });
    await sendAll(env.FULFILLMENTS, applied.newFulfillments).catch((error: unknown) => {
      // The outbox row is committed; the scheduled sweep re-sends the nudge.
      log("warn", "fulfillment.nudge_failed", { count: applied.newFulfillments.length, error: String(error) });
    });
  } catch (error) {
    log("error", "webhooks.batch_failed", { messages: valid.length, error: error instanceof Error ? error.message : String(error) });
    for (const item of [...toAck, ...toRetry.map((r) => r.message)]) item.retry({ delaySeconds: retryDelaySeconds(item.attempts) });
    return;
  }

  for (const message of toAck) message.ack();
  for (const { message, error } of toRetry) {
    log(error.kind === "authentication" ? "error" : "warn", "webhooks.fetch_back_failed", {
      merchant_id: (message.body as WebhookMessage).merchant_id,
      event_id: (message.body as WebhookMessage).event_id,
      kind: error.kind,
      status: error.status,
      attempts: message.attempts,
    });
  }
  await tryLater(env.WEBHOOKS, toRetry);
}
