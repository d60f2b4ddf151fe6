import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../../src/index";
import { consume, deliveryOf } from "../../support/consumer";
import { eventually, openShop, SANDBOX } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";
import { seedFulfillment, seedTransaction } from "../../support/status-api";

/** Breaks one merchant's sealed secret in D1, as a bad key rotation or a corrupted row would. */
const corrupt = (merchantId: string, column: "smart_router_secret_ciphertext" | "fulfillment_secret_ciphertext") =>
  shardedDb.prepare(`UPDATE merchants SET ${column} = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' WHERE id = ?`).bind(merchantId).run();

describe("one merchant's failure never fails another's messages in the same batch", () => {
  it("webhooks: a secret that does not decrypt postpones that merchant's events only", async () => {
    const broken = await openShop({ unlimited: true, webhooks: false });
    const healthy = await openShop({ unlimited: true, webhooks: false });
    const lost = await broken.pay({ card: "4242424242424242", amount: "4.00", currency: "EUR" });
    const paid = await healthy.pay({ card: "4242424242424242", amount: "5.00", currency: "EUR" });
    await corrupt(broken.merchant.merchant.id, "smart_router_secret_ciphertext");
    const brokenEvent = (await broken.truth()).events.find((e) => e.transaction_id === lost.id && e.name === "transaction.captured");
    const healthyEvent = (await healthy.truth()).events.find((e) => e.transaction_id === paid.id && e.name === "transaction.captured");
    if (!brokenEvent || !healthyEvent) throw new Error("no captured events");

    const result = await consume([
      deliveryOf(broken.merchant.merchant.id, brokenEvent),
      deliveryOf(healthy.merchant.merchant.id, healthyEvent),
    ]);
    // Both messages are settled for this batch: the healthy one applied, the broken one put back for later.
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toHaveLength(2);
    const status = (merchantId: string, id: string) =>
      shardedDb
        .prepare("SELECT status FROM transactions WHERE merchant_id = ? AND id = ?")
        .bind(merchantId, id)
        .first<{ status: string }>();
    expect((await status(healthy.merchant.merchant.id, paid.id))?.status).toBe("completed");
    expect(await status(broken.merchant.merchant.id, lost.id)).toBeNull();
    const inbox = await shardedDb
      .prepare("SELECT outcome FROM events WHERE merchant_id = ? AND id = ?")
      .bind(broken.merchant.merchant.id, brokenEvent.id)
      .first<{ outcome: string }>();
    expect(inbox?.outcome).toBe("pending");
  });

  it("fulfilments: a signing secret that does not decrypt postpones that notification only", async () => {
    const broken = await openShop({ unlimited: true, webhooks: false, fulfillment: true });
    const healthy = await openShop({ unlimited: true, webhooks: false, fulfillment: true });
    const rows = [];
    for (const shop of [broken, healthy]) {
      const tx = await seedTransaction(shop.merchant.merchant.id, { status: "completed", capturedAmount: "10.50" });
      await seedFulfillment({ merchantId: shop.merchant.merchant.id, transactionId: tx.id });
      rows.push({ v: 1, merchant_id: shop.merchant.merchant.id, transaction_id: tx.id });
    }
    await corrupt(broken.merchant.merchant.id, "fulfillment_secret_ciphertext");
    const batch = createMessageBatch(
      "smart-router-fulfillments",
      rows.map((body, i) => ({ id: `ful-${i}-${crypto.randomUUID()}`, timestamp: new Date(), attempts: 1, body })),
    );
    const ctx = createExecutionContext();
    await worker.queue?.(batch as MessageBatch<unknown>, env, ctx);
    const result = await getQueueResult(batch, ctx);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toHaveLength(2);
    const sink = await eventually(async () => {
      const body = (await (await fetch(`${SANDBOX}/_sandbox/sink/${healthy.projectId}`)).json()) as { requests: unknown[] };
      expect(body.requests).toHaveLength(1);
      return body.requests;
    });
    expect(sink).toHaveLength(1);
    const brokenSink = (await (await fetch(`${SANDBOX}/_sandbox/sink/${broken.projectId}`)).json()) as { requests: unknown[] };
    expect(brokenSink.requests).toEqual([]);
  });
});
