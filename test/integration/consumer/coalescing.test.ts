import { describe, expect, it } from "vitest";
import { eventually, openShop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";

describe("fetch-back under a burst", () => {
  it("verifies a burst of webhooks with far fewer API calls than events (one events page covers many)", async () => {
    const shop = await openShop({ unlimited: true });
    for (let i = 0; i < 25; i++) await shop.pay({ card: "4242424242424242", amount: `${i + 1}.00`, currency: "EUR" });
    const events = (await shop.truth()).events.length;
    expect(events).toBeGreaterThanOrEqual(50);
    await shop.relay({ rounds: 5 });
    await eventually(async () => {
      const applied = await shardedDb
        .prepare("SELECT count(*) AS n FROM events WHERE merchant_id = ? AND outcome IN ('applied', 'stale')")
        .bind(shop.merchant.merchant.id)
        .first<{ n: number }>();
      expect(applied?.n).toBe(events);
    });
    const counters = (await shop.counters()) as { api: { sandbox: { requests: number } } };
    // One GET /events/{id} per event would be `events` calls; the list verifies most of them in one.
    expect(counters.api.sandbox.requests).toBeLessThan(events / 4);
  });
});
