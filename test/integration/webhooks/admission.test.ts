import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../../src/app";
import { MIN_BACKLOG_LIMIT, QUEUE_SHARE } from "../../../src/ingest/backlog";
import type { DeliveryGate } from "../../../src/ingest/delivery-gate";
import { wakeupOf } from "../../../src/ingest/parking";
import type { WebhookMessage } from "../../../src/queue/messages";
import { consume, deliveryOf } from "../../support/consumer";
import { ADMIN, basic, type CreatedMerchant, call } from "../../support/fixtures";
import { eventually, openShop } from "../../support/sandbox";
import { dbFor, shardedDb } from "../../support/shards";

type Envelope = { error: { code: string; message: string; request_id: string } };

/** Lets every delivery past WEBHOOK_LIMITER, so only the backlog gate can refuse. */
const permissive: RateLimit = { limit: async () => ({ success: true }) };

/** The app with an in-memory queue (recording what it enqueued) and these bindings over the test env's. */
function edge(overrides: Partial<Cloudflare.Env> = {}) {
  const sent: WebhookMessage[] = [];
  const wakes: string[] = [];
  const app = createApp({
    deliveryQueue: () => ({ send: async (message) => void sent.push(message), wake: async (merchantId) => void wakes.push(merchantId) }),
  });
  const bindings = { ...env, WEBHOOK_LIMITER: permissive, ...overrides };
  const post = (merchant: CreatedMerchant, eventId: string, authorization = basic(merchant.webhook.username, merchant.webhook.password)) =>
    app.fetch(
      new Request(`https://edge.test${merchant.webhook.path}`, {
        method: "POST",
        headers: { authorization },
        body: JSON.stringify({ event_id: eventId }),
      }),
      bindings,
    );
  return { sent, wakes, post };
}

/** A shop whose fetch-backs spend a small sandbox quota, so its backlog limit is the floor (MIN_BACKLOG_LIMIT). */
async function smallQuotaShop() {
  const shop = await openShop({ webhooks: false });
  const patched = await call(`/admin/merchants/${shop.merchant.merchant.id}`, {
    method: "PATCH",
    headers: ADMIN,
    body: JSON.stringify({ rate_limits: { sandbox_rpm: 60 } }),
  });
  expect(patched.status).toBe(200);
  const payment = await shop.pay({ card: "4242424242424242", amount: "10.00", currency: "EUR" });
  const events = ((await shop.truth()) as { events: { id: string; name: string }[] }).events;
  const event = events.find((e) => e.name.startsWith("transaction."));
  if (!event) throw new Error(`no event for ${payment.id}`);
  return { shop, event };
}

/** Deliveries waiting in a merchant's parking on its shard. */
async function parkedCount(merchantId: string) {
  const row = await (await dbFor(merchantId))
    .prepare("SELECT count(*) AS n FROM parked_deliveries WHERE merchant_id = ?")
    .bind(merchantId)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

const gateBacklog = (merchantId: string) => env.DELIVERY_GATE.get(env.DELIVERY_GATE.idFromName(merchantId)).backlog();

/** Posts `count` deliveries of `eventId`, a few at a time; answers their statuses. */
async function flood(post: (eventId: string) => Response | Promise<Response>, eventId: string, count: number) {
  const statuses: number[] = [];
  for (let i = 0; i < count; i += 50) {
    const answers = await Promise.all(Array.from({ length: Math.min(50, count - i) }, async () => post(eventId)));
    for (const answer of answers) {
      statuses.push(answer.status);
      await answer.body?.cancel();
    }
  }
  return statuses;
}

describe("webhook edge: admission by backlog", () => {
  it(`answers 429 + Retry-After past ${MIN_BACKLOG_LIMIT} unverified deliveries of one merchant, and admits again as the consumer settles them`, async () => {
    const { shop, event } = await smallQuotaShop();
    const { sent, post } = edge();
    const statuses = await flood((id) => post(shop.merchant, id), event.id, MIN_BACKLOG_LIMIT);
    expect(statuses.every((status) => status === 200)).toBe(true);
    expect(await gateBacklog(shop.merchant.merchant.id)).toBe(MIN_BACKLOG_LIMIT);

    const refused = await post(shop.merchant, event.id);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("60");
    expect(((await refused.json()) as Envelope).error.code).toBe("rate_limited");
    // The first QUEUE_SHARE went on the shared queue, the rest wait in the merchant's parking.
    expect(sent).toHaveLength(QUEUE_SHARE);
    expect(await parkedCount(shop.merchant.merchant.id)).toBe(MIN_BACKLOG_LIMIT - QUEUE_SHARE);

    // The consumer verifies 100 of them (one fetch-back: one event) and tells the gate: 100 places open again.
    const result = await consume(sent.slice(0, 100));
    expect(result.explicitAcks).toHaveLength(100);
    expect(await gateBacklog(shop.merchant.merchant.id)).toBe(MIN_BACKLOG_LIMIT - 100);
    const again = await post(shop.merchant, event.id);
    expect(again.status).toBe(200);
  });

  it("sheds one merchant only: another merchant's deliveries are taken while the first is refused", async () => {
    const flooded = await smallQuotaShop();
    const other = await smallQuotaShop();
    const { post } = edge();
    await flood((id) => post(flooded.shop.merchant, id), flooded.event.id, MIN_BACKLOG_LIMIT);
    expect((await post(flooded.shop.merchant, flooded.event.id)).status).toBe(429);
    expect((await post(other.shop.merchant, other.event.id)).status).toBe(200);
  });

  it("takes the delivery when the gate itself fails (it only sheds floods)", async () => {
    const { shop, event } = await smallQuotaShop();
    const failing = {
      idFromName: (name: string) => env.DELIVERY_GATE.idFromName(name),
      get: () => ({
        admit: async () => {
          throw new Error("gate unreachable");
        },
      }),
    } as unknown as DurableObjectNamespace<DeliveryGate>;
    const { sent, post } = edge({ DELIVERY_GATE: failing });
    const answer = await post(shop.merchant, event.id);
    expect(answer.status).toBe(200);
    expect(sent).toHaveLength(1);
  });
});

describe("webhook edge: a merchant past its queue share waits in its own parking", () => {
  it("parks the flooded merchant's deliveries past its share under one wake-up, while another merchant's go on the queue", async () => {
    const flooded = await smallQuotaShop();
    const other = await smallQuotaShop();
    const { sent, wakes, post } = edge();
    const statuses = await flood((id) => post(flooded.shop.merchant, id), flooded.event.id, QUEUE_SHARE + 50);
    expect(new Set(statuses)).toEqual(new Set([200]));
    expect(sent).toHaveLength(QUEUE_SHARE);
    expect(await parkedCount(flooded.shop.merchant.merchant.id)).toBe(50);
    // One wake-up books the whole parking (a booked one is pending), not one per delivery.
    expect(wakes).toEqual([flooded.shop.merchant.merchant.id]);
    expect((await post(other.shop.merchant, other.event.id)).status).toBe(200);
    expect(sent.at(-1)?.merchant_id).toBe(other.shop.merchant.merchant.id);
    expect(await parkedCount(other.shop.merchant.merchant.id)).toBe(0);
  });

  it("a wake-up runs the parked deliveries through the consumer: verified, gone from the parking, counted out of the gate", async () => {
    const { shop, event } = await smallQuotaShop();
    const merchantId = shop.merchant.merchant.id;
    const { post } = edge();
    await flood((id) => post(shop.merchant, id), event.id, QUEUE_SHARE + 20);
    expect(await parkedCount(merchantId)).toBe(20);
    const result = await consume([wakeupOf(merchantId) as unknown as WebhookMessage]);
    expect(result.explicitAcks).toHaveLength(1);
    expect(await parkedCount(merchantId)).toBe(0);
    expect(await gateBacklog(merchantId)).toBe(QUEUE_SHARE);
    const inbox = await outcomes(merchantId);
    expect((inbox.applied ?? 0) + (inbox.stale ?? 0) + (inbox.ignored ?? 0)).toBe(1);
  });
});

describe("webhook edge: parking that fails", () => {
  it("falls back to the queue when the merchant's shard refuses the parking write", async () => {
    const { shop, event } = await smallQuotaShop();
    const merchantId = shop.merchant.merchant.id;
    const shard = await dbFor(merchantId);
    // The shard reads (credential directory) but refuses batches: the parking's one D1 batch fails.
    const refusingBatches = new Proxy(shard, {
      get: (target, key) =>
        key === "batch" ? () => Promise.reject(new Error("D1_ERROR: database is locked")) : Reflect.get(target, key).bind(target),
    });
    const binding = shard === env.DB ? { DB: refusingBatches } : { DB_SHARD_1: refusingBatches };
    const { sent, wakes, post } = edge(binding);
    const statuses = await flood((id) => post(shop.merchant, id), event.id, QUEUE_SHARE + 10);
    expect(new Set(statuses)).toEqual(new Set([200]));
    expect(sent).toHaveLength(QUEUE_SHARE + 10);
    expect(wakes).toEqual([]);
    expect(await parkedCount(merchantId)).toBe(0);
  });
});

describe("webhook edge: admission by backlog, security", () => {
  it("counts only authenticated deliveries: a flood without the credential leaves the merchant's backlog empty", async () => {
    const { shop, event } = await smallQuotaShop();
    const { post } = edge();
    const statuses = await flood((id) => post(shop.merchant, id, basic(shop.merchant.webhook.username, "wrong")), event.id, 200);
    expect(new Set(statuses)).toEqual(new Set([401]));
    expect(await gateBacklog(shop.merchant.merchant.id)).toBe(0);
  });
});

/** Smart Router calls the shop's project has taken so far (the emulator's own counters). */
async function apiCalls(shop: Awaited<ReturnType<typeof openShop>>) {
  const counters = (await shop.counters()) as { api: { sandbox: { requests: number } } };
  return counters.api.sandbox.requests;
}

const outcomes = (merchantId: string) =>
  shardedDb
    .prepare("SELECT outcome, count(*) AS n FROM events WHERE merchant_id = ? GROUP BY outcome")
    .bind(merchantId)
    .all<{ outcome: string; n: number }>()
    .then(({ results }) => Object.fromEntries(results.map((row) => [row.outcome, row.n])));

describe("fetch-back: a flood of forged ids costs almost nothing", () => {
  it("verifies 300 forged ids with at most 0.1 Smart Router calls each, first look and re-check together", async () => {
    const shop = await openShop({ unlimited: true, webhooks: false });
    for (let i = 0; i < 3; i++) await shop.pay({ card: "4242424242424242", amount: `${i + 1}.00`, currency: "EUR" });
    const before = await apiCalls(shop);
    const forged = Array.from({ length: 300 }, (_, i) =>
      deliveryOf(shop.merchant.merchant.id, { id: `ev_forged${i}x${Date.now()}`, name: "transaction.captured" }),
    );
    // As the queue hands them over: batches of 100. Each unknown id is asked again once (the queue's re-check).
    for (let i = 0; i < forged.length; i += 100) await consume(forged.slice(i, i + 100));
    await eventually(async () => expect((await outcomes(shop.merchant.merchant.id)).rejected).toBe(300), { timeoutMs: 30_000 });
    const calls = (await apiCalls(shop)) - before;
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThanOrEqual(30);
  });

  it("still fetches a backlog of genuine events the newest pages do not show (after an outage), none of them rejected", async () => {
    const shop = await openShop({ unlimited: true, webhooks: false });
    for (let i = 0; i < 70; i++) await shop.pay({ card: "4242424242424242", amount: `${i + 1}.00`, currency: "EUR" });
    const events = ((await shop.truth()) as { events: { id: string; name: string }[] }).events;
    expect(events.length).toBeGreaterThan(200);
    // The oldest 60 events: far behind the newest list pages, as deliveries held up by an outage would be.
    const oldest = events.slice(0, 60);
    await consume(oldest.map((event) => deliveryOf(shop.merchant.merchant.id, event)));
    const seen = await outcomes(shop.merchant.merchant.id);
    expect(seen.rejected ?? 0).toBe(0);
    expect((seen.applied ?? 0) + (seen.stale ?? 0) + (seen.ignored ?? 0)).toBe(60);
  });
});

describe("fetch-back: a sample that cannot tell spends nothing on the rest", () => {
  it("when Smart Router fails the sample, the other unlisted ids wait without a call of their own", async () => {
    const shop = await openShop({ unlimited: true, webhooks: false });
    await shop.settings({ chaos: { api_5xx_rate: 1 } });
    const before = await apiCalls(shop);
    const forged = Array.from({ length: 50 }, (_, i) =>
      deliveryOf(shop.merchant.merchant.id, { id: `ev_unsure${i}x${Date.now()}`, name: "transaction.captured" }),
    );
    const result = await consume(forged);
    // One list page and the sample of two, all answered 503; the other 47 are put back untried (postponed, not fetched).
    expect((await apiCalls(shop)) - before).toBeLessThanOrEqual(3);
    expect(result.explicitAcks).toHaveLength(50);
    const outcomesNow = await outcomes(shop.merchant.merchant.id);
    expect(outcomesNow.rejected ?? 0).toBe(0);
  });
});
