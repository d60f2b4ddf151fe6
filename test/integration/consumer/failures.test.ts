import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, call } from "../../support/fixtures";
import { eventually, openShop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";

const row = (merchantId: string, id: string) =>
  shardedDb.prepare("SELECT status FROM transactions WHERE merchant_id = ? AND id = ?").bind(merchantId, id).first<{ status: string }>();
const inbox = (merchantId: string, eventId: string) =>
  shardedDb
    .prepare("SELECT outcome, detail, deliveries FROM events WHERE merchant_id = ? AND id = ?")
    .bind(merchantId, eventId)
    .first<{ outcome: string; detail: string | null; deliveries: number }>();

describe("consumer: failures lose nothing and change nothing they should not", () => {
  it("records a forged event id as rejected and changes no transaction", async () => {
    const shop = await openShop();
    const before = await shardedDb
      .prepare("SELECT count(*) AS n FROM transactions WHERE merchant_id = ?")
      .bind(shop.merchant.merchant.id)
      .first<{ n: number }>();
    const response = await call(shop.merchant.webhook.path, {
      method: "POST",
      headers: { authorization: `Basic ${btoa(`${shop.merchant.webhook.username}:${shop.merchant.webhook.password}`)}` },
      body: JSON.stringify({ event_id: "ev_forgedbyanattacker", event_type: "transaction.captured" }),
    });
    expect(response.status).toBe(200);
    const recorded = await eventually(async () => {
      const entry = await inbox(shop.merchant.merchant.id, "ev_forgedbyanattacker");
      expect(entry?.outcome).toBe("rejected");
      return entry;
    });
    expect(recorded?.detail).toMatch(/not found/);
    const after = await shardedDb
      .prepare("SELECT count(*) AS n FROM transactions WHERE merchant_id = ?")
      .bind(shop.merchant.merchant.id)
      .first<{ n: number }>();
    expect(after?.n).toBe(before?.n);
    const fulfilments = await shardedDb
      .prepare("SELECT count(*) AS n FROM fulfillments WHERE merchant_id = ?")
      .bind(shop.merchant.merchant.id)
      .first<{ n: number }>();
    expect(fulfilments?.n).toBe(0);
  });

  it("dead-letters a message of an unknown version at once, without retrying it", async () => {
    const deliveryId = crypto.randomUUID();
    await env.WEBHOOKS.send({ v: 2, merchant_id: "someone", event_id: "ev_future", delivery_id: deliveryId });
    const letter = await eventually(async () => {
      const row = await shardedDb
        .prepare("SELECT error, attempts, body FROM dead_letters WHERE body LIKE ?")
        .bind(`%${deliveryId}%`)
        .first<{ error: string; attempts: number }>();
      expect(row).not.toBeNull();
      return row;
    });
    expect(letter).toMatchObject({ error: "unrecognised message", attempts: 1 });
  });

  it("ends in the true state when the API answers 5xx, then 429 (each retried with backoff)", async () => {
    const shop = await openShop({ unlimited: true });
    type Counters = { api: { sandbox: { injected_429: number; injected_5xx: number; succeeded: number } } };
    const counters = async () => ((await shop.counters()) as Counters).api.sandbox;
    // Phase by phase, so the test is deterministic: every fetch-back fails with 5xx, then with 429, then succeeds.
    await shop.settings({ chaos: { api_5xx_rate: 1 } });
    const payment = await shop.pay({ card: "4242424242424242", amount: "12.00", currency: "USD" });
    await shop.relay({ rounds: 5 });
    await eventually(async () => expect((await counters()).injected_5xx).toBeGreaterThan(0));
    await shop.settings({ chaos: { api_5xx_rate: 0, api_429_rate: 1 } });
    await eventually(async () => expect((await counters()).injected_429).toBeGreaterThan(0), { timeoutMs: 15_000 });
    await shop.settings({ chaos: { api_429_rate: 0 } });
    await eventually(async () => expect((await row(shop.merchant.merchant.id, payment.id))?.status).toBe("completed"), {
      timeoutMs: 20_000,
    });
    expect((await counters()).succeeded).toBeGreaterThan(0);
  }, 45_000);

  it("dead-letters an event that keeps failing, and a redrive after the fix applies it once", async () => {
    const shop = await openShop({ unlimited: true });
    // The project's key is rotated at Smart Router and the merchant's stored one is now wrong: every fetch-back answers 401.
    const rotated = `sk_${crypto.randomUUID()}`;
    await shop.settings({ secret_key: rotated });
    const payment = await shop.pay({ card: "4242424242424242", amount: "5.00", currency: "EUR" });
    await shop.relay({ rounds: 5 });
    const letters = await eventually(
      async () => {
        const response = await call(`/admin/dead-letters?merchant=${shop.merchant.merchant.id}`, { headers: ADMIN });
        const body = (await response.json()) as { dead_letters: { id: string; error: string; attempts: number }[] };
        expect(body.dead_letters.length).toBe((await shop.truth()).events.length);
        return body.dead_letters;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(letters[0]?.error).toMatch(/401/);
    expect(await row(shop.merchant.merchant.id, payment.id)).toBeNull();

    const truth = await shop.truth();
    const fixed = await call(`/admin/merchants/${shop.merchant.merchant.id}`, {
      method: "PATCH",
      headers: ADMIN,
      body: JSON.stringify({ smart_router: { secret_key: rotated } }),
    });
    expect(fixed.status).toBe(200);
    const redrive = await call("/admin/dead-letters/redrive", {
      method: "POST",
      headers: ADMIN,
      body: JSON.stringify({ merchant: shop.merchant.merchant.id }),
    });
    expect(((await redrive.json()) as { redriven: string[] }).redriven).toHaveLength(letters.length);
    await eventually(async () => {
      expect((await row(shop.merchant.merchant.id, payment.id))?.status).toBe(truth.transactions.find((t) => t.id === payment.id)?.status);
    });
    const again = await call(`/admin/dead-letters?merchant=${shop.merchant.merchant.id}`, { headers: ADMIN });
    expect(((await again.json()) as { dead_letters: unknown[] }).dead_letters).toHaveLength(0);
  }, 60_000);
});
