import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { call, deliver } from "../../support/fixtures";
import { eventually, openShop, type SandboxTransaction, type Shop } from "../../support/sandbox";
import { getJson, getWithKey, seedTransactions, transactionRow } from "../../support/status-api";
import { asAdmin, budgetOf, entriesOf, expectError, getAs, pipelineOf, timelineOf, untilStatus, walkMerchants } from "./support";

describe("console API: merchant B never sees anything of merchant A", () => {
  let a: Shop;
  let b: Shop;
  let paymentOfA: SandboxTransaction;

  beforeAll(async () => {
    [a, b] = [await openShop({ fulfillment: true, unlimited: true }), await openShop({ unlimited: true })];
    paymentOfA = await a.pay({ card: "4242424242424242", amount: "30.00", currency: "EUR" });
    await a.relay({ rounds: 10 });
    await untilStatus(a, paymentOfA.id, "completed");
    await eventually(async () => {
      expect(entriesOf(await timelineOf(a.merchant.api_key, paymentOfA.id), "fulfillment_attempt")).toHaveLength(1);
    });
    const created = await call("/v1/batches", {
      method: "POST",
      headers: { authorization: `Bearer ${a.merchant.api_key}`, "content-type": "application/json" },
      body: JSON.stringify({ kind: "refresh", transaction_ids: [paymentOfA.id] }),
    });
    expect(created.status).toBe(202);
  });

  it("answers A's timeline to B as a plain 404, the same as a transaction that does not exist", async () => {
    const foreign = await expectError(await getWithKey(`/v1/transactions/${paymentOfA.id}/timeline`, b.merchant.api_key), 404, "not_found");
    const missing = await expectError(await getWithKey("/v1/transactions/tr_doesnotexist/timeline", b.merchant.api_key), 404, "not_found");
    expect(foreign.message.replace(paymentOfA.id, "ID")).toBe(missing.message.replace("tr_doesnotexist", "ID"));
    await expectError(
      await call(`/v1/transactions/${paymentOfA.id}/timeline`, { headers: asAdmin(b.merchant.merchant.id) }),
      404,
      "not_found",
    );
  });

  it("counts none of A's deliveries in B's pipeline, and lists none of A's batches", async () => {
    expect((await pipelineOf(a.merchant.api_key)).outcomes.applied).toBeGreaterThan(0);
    const pipeline = await pipelineOf(b.merchant.api_key);
    expect(pipeline.deliveries_per_minute.every((minute) => minute.count === 0)).toBe(true);
    expect(Object.values(pipeline.outcomes).every((count) => count === 0)).toBe(true);
    expect(pipeline.lag_ms).toEqual({ p50: null, p99: null });
    expect((await getJson<{ batches: unknown[] }>("/v1/batches", a.merchant.api_key)).batches).toHaveLength(1);
    expect(await getJson("/v1/batches", b.merchant.api_key)).toEqual({ batches: [], next_cursor: null });
  });

  it("shows B only B's backlog: A's unsettled deliveries are not in it, and no key sees the shared queue", async () => {
    const c = await openShop({ unlimited: true, settings: { chaos: { api_5xx_rate: 1 } } });
    await c.pay({ card: "4242424242424242", amount: "5.00", currency: "EUR" });
    await c.relay({ rounds: 10 });
    await eventually(async () => {
      expect((await pipelineOf(c.merchant.api_key)).backlog.count).toBeGreaterThan(0);
    });
    const ofB = await pipelineOf(b.merchant.api_key);
    expect(ofB.backlog).toEqual({ source: "inbox", count: 0, oldest_received_at: null, oldest_age_seconds: null });
    expect(ofB.webhook_queue).toBeNull();
    await c.settings({ chaos: { api_5xx_rate: 0 } });
  });

  it("reads B's own project in B's budget", async () => {
    expect((await budgetOf(b.merchant.api_key)).project_id).toBe(b.projectId);
    expect((await budgetOf(a.merchant.api_key)).project_id).toBe(a.projectId);
  });

  it("filters by payment type within B's transactions only", async () => {
    await seedTransactions([transactionRow(b.merchant.merchant.id, { paymentType: "card" })]);
    const cards = await getJson<{ transactions: { id: string }[] }>("/v1/transactions?payment_type=card", b.merchant.api_key);
    expect(cards.transactions.map((t) => t.id)).not.toContain(paymentOfA.id);
    expect(cards.transactions).toHaveLength(1);
  });

  it("lets an API key name no other merchant: X-Merchant-Id is the admin token's only", async () => {
    const headers = { authorization: `Bearer ${b.merchant.api_key}`, "x-merchant-id": a.merchant.merchant.id };
    await expectError(await call(`/v1/transactions/${paymentOfA.id}/timeline`, { headers }), 404, "not_found");
    expect((await getAs<{ budget: { project_id: string } }>("/v1/budget", headers)).budget.project_id).toBe(b.projectId);
    expect(await getAs("/v1/batches", headers)).toEqual({ batches: [], next_cursor: null });
  });

  it("shows the admin token only the merchant X-Merchant-Id names", async () => {
    const asA = await getAs<{ timeline: unknown[] }>(`/v1/transactions/${paymentOfA.id}/timeline`, asAdmin(a.merchant.merchant.id));
    expect(asA.timeline.length).toBeGreaterThan(0);
    expect((await getAs<{ batches: unknown[] }>("/v1/batches", asAdmin(b.merchant.merchant.id))).batches).toHaveLength(0);
  });
});

describe("console API: no secret and no merchant answer reaches a response", () => {
  it("keeps credentials and the merchant's answer bodies out of the timeline", async () => {
    const shop = await openShop({ fulfillment: true, unlimited: true });
    const payment = await shop.pay({ card: "4242424242424242", amount: "8.00", currency: "EUR" });
    await shop.relay({ rounds: 10 });
    await untilStatus(shop, payment.id, "completed");
    const first = (await shop.truth()).events.find((event) => event.transaction_id === payment.id);
    if (!first) throw new Error("no event");
    await deliver(shop.merchant, { event_id: first.id, event_type: first.name });
    const text = await eventually(async () => {
      const timeline = await timelineOf(shop.merchant.api_key, payment.id);
      expect(entriesOf(timeline, "fulfillment_attempt")).toHaveLength(1);
      expect(entriesOf(timeline, "delivery").filter((entry) => entry.detail.duplicate)).toHaveLength(1);
      return JSON.stringify(timeline);
    });
    for (const secret of [
      shop.secretKey,
      shop.merchant.api_key,
      shop.merchant.webhook.password,
      shop.merchant.fulfillment.signing_secret,
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(text).not.toContain(env.ADMIN_TOKEN);
  });

  it("lists merchants for the admin without any secret, even sealed", async () => {
    const shop = await openShop();
    const { pages, merchants } = await walkMerchants();
    expect(merchants.map((merchant) => merchant.id)).toContain(shop.merchant.merchant.id);
    const body = pages.join("\n");
    for (const secret of [
      shop.secretKey,
      shop.merchant.api_key,
      shop.merchant.webhook.password,
      shop.merchant.fulfillment.signing_secret,
    ]) {
      expect(body).not.toContain(secret);
    }
    expect(body).not.toMatch(/ciphertext|hash|secret_key/);
  });

  it("never answers a 403: an admin naming an unknown merchant gets a 404, a merchant key on the admin list a 401", async () => {
    const shop = await openShop();
    expect((await call("/v1/pipeline", { headers: asAdmin("unknown-merchant-x") })).status).toBe(404);
    expect((await call("/admin/merchants", { headers: { authorization: `Bearer ${shop.merchant.api_key}` } })).status).toBe(401);
  });
});
