import { describe, expect, it } from "vitest";
import { call } from "../../support/fixtures";
import { eventually, openShop, type Shop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";

type Batch = { id: string; status: string; total: number; done: number; failed: number; api_calls: number; kind: string };

const bearer = (shop: Shop) => ({ authorization: `Bearer ${shop.merchant.api_key}`, "content-type": "application/json" });

async function startBatch(shop: Shop, body: unknown) {
  const response = await call("/v1/batches", { method: "POST", headers: bearer(shop), body: JSON.stringify(body) });
  return { response, body: (await response.json()) as { batch: Batch; error?: { code: string; message: string } } };
}

async function batchOf(shop: Shop, id: string) {
  const response = await call(`/v1/batches/${id}`, { headers: bearer(shop) });
  expect(response.status).toBe(200);
  return ((await response.json()) as { batch: Batch }).batch;
}

const storedCount = async (merchantId: string) =>
  (await shardedDb.prepare("SELECT count(*) AS n FROM transactions WHERE merchant_id = ?").bind(merchantId).first<{ n: number }>())?.n ?? 0;

describe("batches: sync", () => {
  it("fills D1 from Smart Router with no webhooks at all, reaching completed without one 429", async () => {
    const shop = await openShop({ webhooks: false });
    const before = new Date(Date.now() - 60_000).toISOString();
    const created: string[] = [];
    for (let i = 0; i < 130; i++) {
      const card = i % 3 === 0 ? "4000000000000002" : "4242424242424242";
      created.push((await shop.pay({ card, amount: `${10 + i}.50`, currency: "EUR" })).id);
    }
    const after = new Date(Date.now() + 60_000).toISOString();
    const { response, body } = await startBatch(shop, { kind: "sync", created_after: before, created_before: after });
    expect(response.status).toBe(202);
    expect(body.batch).toMatchObject({ kind: "sync", status: "queued" });

    const finished = await eventually(
      async () => {
        const batch = await batchOf(shop, body.batch.id);
        expect(batch.status).toBe("completed");
        return batch;
      },
      { timeoutMs: 45_000, intervalMs: 250 },
    );
    expect(finished).toMatchObject({ total: 130, done: 130, failed: 0 });
    expect(finished.api_calls).toBeGreaterThanOrEqual(2);
    expect(await storedCount(shop.merchant.merchant.id)).toBe(130);

    const truth = await shop.truth();
    const rows = await shardedDb
      .prepare("SELECT id, status, captured_amount FROM transactions WHERE merchant_id = ?")
      .bind(shop.merchant.merchant.id)
      .all<{ id: string; status: string; captured_amount: string }>();
    for (const row of rows.results) {
      const t = truth.transactions.find((candidate) => candidate.id === row.id);
      expect(row).toEqual({ id: t?.id, status: t?.status, captured_amount: t?.captured_amount });
    }
    const counters = (await shop.counters()) as { api: Record<string, { rate_limited: number; requests: number }> };
    expect(counters.api.sandbox?.rate_limited).toBe(0);
    // The batch's calls, and the one registration made to check the merchant's credentials.
    expect(counters.api.sandbox?.requests).toBe(finished.api_calls + 1);
  }, 60_000);

  it("only takes transactions created inside the range", async () => {
    const shop = await openShop({ webhooks: false, unlimited: true });
    await shop.pay({ card: "4242424242424242", amount: "1.00", currency: "EUR" });
    // The emulator stamps created_at with Node's clock and the range is taken from workerd's, which may read the same
    // millisecond: keep a few milliseconds on both sides of `from`.
    const pause = () => new Promise((resolve) => setTimeout(resolve, 5));
    await pause();
    const from = new Date().toISOString();
    await pause();
    const inside = await shop.pay({ card: "4242424242424242", amount: "2.00", currency: "EUR" });
    const to = new Date(Date.now() + 1).toISOString();
    const { body } = await startBatch(shop, { kind: "sync", created_after: from, created_before: to });
    await eventually(async () => expect((await batchOf(shop, body.batch.id)).status).toBe("completed"), { timeoutMs: 20_000 });
    const rows = await shardedDb
      .prepare("SELECT id FROM transactions WHERE merchant_id = ?")
      .bind(shop.merchant.merchant.id)
      .all<{ id: string }>();
    expect(rows.results.map((r) => r.id)).toEqual([inside.id]);
  }, 30_000);
});

describe("batches: refresh and cancel", () => {
  it("refreshes given ids, counting unknown ones as failed", async () => {
    const shop = await openShop({ webhooks: false, unlimited: true });
    const a = await shop.pay({ card: "4242424242424242", amount: "3.00", currency: "EUR" });
    const b = await shop.pay({ card: "4000000000000002", amount: "4.00", currency: "EUR" });
    const { response, body } = await startBatch(shop, { kind: "refresh", transaction_ids: [a.id, b.id, "tr_doesnotexist"] });
    expect(response.status).toBe(202);
    const batch = await eventually(async () => {
      const current = await batchOf(shop, body.batch.id);
      expect(current.status).toBe("completed");
      return current;
    });
    expect(batch).toMatchObject({ total: 3, done: 2, failed: 1 });
    expect(await storedCount(shop.merchant.merchant.id)).toBe(2);
  });

  it("cancels a batch, and refuses to cancel it twice", async () => {
    const shop = await openShop({ webhooks: false });
    const { body } = await startBatch(shop, {
      kind: "sync",
      created_after: "2020-01-01T00:00:00Z",
      created_before: "2020-01-02T00:00:00Z",
    });
    const cancelled = await call(`/v1/batches/${body.batch.id}`, { method: "DELETE", headers: bearer(shop) });
    if (cancelled.status === 200) {
      expect(((await cancelled.json()) as { batch: Batch }).batch.status).toBe("cancelled");
    } else {
      // The one-page walk may already have finished.
      expect(cancelled.status).toBe(409);
    }
    const again = await call(`/v1/batches/${body.batch.id}`, { method: "DELETE", headers: bearer(shop) });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe("conflict");
  });
});

describe("batches: errors and isolation", () => {
  it.each([
    ["an unknown kind", { kind: "report" }],
    ["a sync without dates", { kind: "sync" }],
    ["dates in the wrong order", { kind: "sync", created_after: "2026-02-01T00:00:00Z", created_before: "2026-01-01T00:00:00Z" }],
    ["a malformed date", { kind: "sync", created_after: "yesterday", created_before: "2026-01-01T00:00:00Z" }],
    ["an empty id list", { kind: "refresh", transaction_ids: [] }],
    ["an id that is not tr_", { kind: "refresh", transaction_ids: ["ev_1"] }],
    ["an unknown field", { kind: "refresh", transaction_ids: ["tr_1"], priority: "high" }],
  ])("400 for %s", async (_name, body) => {
    const shop = await openShop({ webhooks: false });
    const { response, body: answer } = await startBatch(shop, body);
    expect(response.status).toBe(400);
    expect(answer.error?.code).toBe("invalid_body");
  });

  it("400 for a body that is not JSON", async () => {
    const shop = await openShop({ webhooks: false });
    const response = await call("/v1/batches", { method: "POST", headers: bearer(shop), body: "{" });
    expect(response.status).toBe(400);
  });

  it("401 without a key, 404 for another merchant's batch and for unknown ids", async () => {
    const mine = await openShop({ webhooks: false });
    const theirs = await openShop({ webhooks: false });
    const { body } = await startBatch(mine, { kind: "refresh", transaction_ids: ["tr_x1"] });
    expect((await call(`/v1/batches/${body.batch.id}`)).status).toBe(401);
    expect((await call(`/v1/batches/${body.batch.id}`, { headers: bearer(theirs) })).status).toBe(404);
    expect((await call(`/v1/batches/${body.batch.id}`, { method: "DELETE", headers: bearer(theirs) })).status).toBe(404);
    expect((await call(`/v1/batches/bat_${"0".repeat(32)}`, { headers: bearer(mine) })).status).toBe(404);
    expect((await call("/v1/batches/not-a-batch", { headers: bearer(mine) })).status).toBe(404);
  });
});
