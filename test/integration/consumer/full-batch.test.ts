import { describe, expect, it } from "vitest";
import { consume, deliveryOf } from "../../support/consumer";
import { ADMIN, call } from "../../support/fixtures";
import { openShop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";

/** The largest batch the webhooks queue hands over (wrangler.toml: max_batch_size 100). */
const FULL_BATCH = 100;

describe("a full queue batch of one merchant", () => {
  // D1 binds at most 100 parameters per statement: a lookup of 100 event ids beside the merchant id once failed here,
  // so a burst of deliveries for one merchant was retried until it was dead-lettered.
  it("applies 100 deliveries in one batch, and a redelivery of all of them costs no API call", async () => {
    const shop = await openShop({ unlimited: true, webhooks: false });
    const merchantId = shop.merchant.merchant.id;
    for (let i = 0; i < 34; i++) await shop.pay({ card: "4242424242424242", amount: `${i + 1}.00`, currency: "EUR" });
    const events = (await shop.truth()).events.slice(0, FULL_BATCH);
    expect(events).toHaveLength(FULL_BATCH);
    const messages = events.map((event) => deliveryOf(merchantId, event));

    const first = await consume(messages);
    expect(first.retryMessages).toEqual([]);
    expect(first.explicitAcks).toHaveLength(FULL_BATCH);
    const settled = await shardedDb
      .prepare("SELECT count(*) AS n FROM events WHERE merchant_id = ? AND outcome IN ('applied', 'stale')")
      .bind(merchantId)
      .first<{ n: number }>();
    expect(settled?.n).toBe(FULL_BATCH);

    const before = (await shop.counters()) as { api: { sandbox: { requests: number } } };
    const again = await consume(messages);
    expect(again.retryMessages).toEqual([]);
    expect(again.explicitAcks).toHaveLength(FULL_BATCH);
    const after = (await shop.counters()) as { api: { sandbox: { requests: number } } };
    expect(after.api.sandbox.requests).toBe(before.api.sandbox.requests);
  });

  it("redrives 100 dead letters named by id in one request", async () => {
    const shop = await openShop({ unlimited: true, webhooks: false });
    const merchantId = shop.merchant.merchant.id;
    const ids = Array.from({ length: FULL_BATCH }, (_, i) => `dl_full${i}_${crypto.randomUUID().slice(0, 8)}`);
    const insert = shardedDb.prepare(
      "INSERT INTO dead_letters (id, queue, merchant_id, body, error, attempts, created_at) VALUES (?, 'smart-router-webhooks', ?, ?, 'test', 3, ?)",
    );
    await shardedDb.batch(
      ids.map((id, i) =>
        insert.bind(
          id,
          merchantId,
          JSON.stringify({
            v: 1,
            merchant_id: merchantId,
            event_id: `ev_deadletter${i}`,
            event_type: null,
            received_at: new Date().toISOString(),
            delivery_id: id,
          }),
          new Date().toISOString(),
        ),
      ),
    );
    const response = await call("/admin/dead-letters/redrive", { method: "POST", headers: ADMIN, body: JSON.stringify({ ids }) });
    expect(response.status).toBe(200);
    const left = await shardedDb
      .prepare("SELECT count(*) AS n FROM dead_letters WHERE merchant_id = ? AND redriven_at IS NULL")
      .bind(merchantId)
      .first<{ n: number }>();
    expect(left?.n).toBe(0);
  });
});
