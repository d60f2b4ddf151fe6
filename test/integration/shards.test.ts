import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import type { WebhookMessage } from "../../src/queue/messages";
import { deliveryOf } from "../support/consumer";
import { ADMIN, call } from "../support/fixtures";
import { eventually, openShop, type Shop } from "../support/sandbox";
import { SHARDS, shardIndexOf } from "../support/shards";

const transactionsOn = async (db: D1Database, merchantId: string) =>
  (await db.prepare("SELECT id, status FROM transactions WHERE merchant_id = ?").bind(merchantId).all<{ id: string; status: string }>())
    .results;

const shardOf = async (shop: Shop) => {
  const index = await shardIndexOf(shop.merchant.merchant.id);
  if (index === undefined) throw new Error(`merchant ${shop.merchant.merchant.id} is in no shard`);
  return index;
};

/** Two merchants on different shards: shops are opened until both shards hold one (least-full assignment alternates). */
async function shopsOnBothShards(): Promise<[Shop, Shop]> {
  const byShard = new Map<number, Shop>();
  // Ends within a few registrations: each goes to the shard holding fewer merchants.
  for (let attempt = 0; attempt < 6 && byShard.size < 2; attempt += 1) {
    const shop = await openShop({ unlimited: true, webhooks: false });
    byShard.set(await shardOf(shop), byShard.get(await shardOf(shop)) ?? shop);
  }
  const first = byShard.get(0);
  const second = byShard.get(1);
  if (!first || !second) throw new Error("registrations did not reach both shards");
  return [first, second];
}

/** A queue batch of the webhooks queue handed to the worker with `bindings`; answers what it acked and retried. */
async function consumeWith(bindings: typeof env, messages: WebhookMessage[]) {
  const batch = createMessageBatch<WebhookMessage>(
    "smart-router-webhooks",
    messages.map((body, index) => ({ id: `msg-${index}-${crypto.randomUUID()}`, timestamp: new Date(), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue?.(batch as MessageBatch<unknown>, bindings, ctx);
  return { ids: batch.messages.map((message) => message.id), result: await getQueueResult(batch, ctx) };
}

/** A D1 binding whose calls named in `failing` fail, as a shard that is down (or cannot commit) would. */
function failing(db: D1Database, failing: ReadonlySet<PropertyKey>): D1Database {
  return new Proxy(db, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      if (failing.has(property)) {
        return () => {
          throw new Error("D1_ERROR: shard unavailable (test)");
        };
      }
      return value.bind(target);
    },
  });
}
const unreachable = (db: D1Database) => failing(db, new Set(["prepare", "batch", "exec"]));
const failingBatches = (db: D1Database) => failing(db, new Set(["batch"]));

describe("merchants spread over D1 shards", () => {
  it("registers each merchant on the least full shard, so registrations alternate", async () => {
    const counts = async () =>
      (await env.DB.prepare("SELECT shard, count(*) AS n FROM merchant_shards GROUP BY shard").all<{ shard: number; n: number }>()).results;
    await openShop({ webhooks: false });
    await openShop({ webhooks: false });
    const after = await counts();
    expect(after.map((row) => row.shard).sort()).toEqual([0, 1]);
    const [a, b] = after.map((row) => row.n);
    expect(Math.abs((a ?? 0) - (b ?? 0))).toBeLessThanOrEqual(1);
  });

  it("keeps a merchant's row and its data on its shard only; the directory on DB names the shard", async () => {
    const [onFirst, onSecond] = await shopsOnBothShards();
    for (const [index, shop] of [onFirst, onSecond].entries()) {
      const merchantId = shop.merchant.merchant.id;
      const payment = await shop.pay({ card: "4242424242424242", amount: "9.00", currency: "EUR" });
      const events = (await shop.truth()).events.filter((event) => event.transaction_id === payment.id);
      const { result } = await consumeWith(
        env,
        events.map((event) => deliveryOf(merchantId, event)),
      );
      expect(result.retryMessages).toEqual([]);
      const own = SHARDS[index];
      const other = SHARDS[1 - index];
      if (!own || !other) throw new Error("two shards are bound in tests");
      expect(await transactionsOn(own, merchantId)).toEqual([{ id: payment.id, status: "completed" }]);
      expect(await transactionsOn(other, merchantId)).toEqual([]);
      expect(await other.prepare("SELECT id FROM merchants WHERE id = ?").bind(merchantId).first()).toBeNull();
      expect(await own.prepare("SELECT id FROM merchants WHERE id = ?").bind(merchantId).first()).toEqual({ id: merchantId });
      // The status API reads it from there, with the merchant's own key.
      const response = await call(`/v1/transactions/${payment.id}`, { headers: { authorization: `Bearer ${shop.merchant.api_key}` } });
      expect(response.status).toBe(200);
    }
  });

  it("commits a queue batch spanning both shards, each shard's part in its own D1 batch", async () => {
    const [onFirst, onSecond] = await shopsOnBothShards();
    const payments = await Promise.all(
      [onFirst, onSecond].map((shop) => shop.pay({ card: "4242424242424242", amount: "3.00", currency: "USD" })),
    );
    const messages = [];
    for (const [index, shop] of [onFirst, onSecond].entries()) {
      const events = (await shop.truth()).events.filter((event) => event.transaction_id === payments[index]?.id);
      messages.push(...events.map((event) => deliveryOf(shop.merchant.merchant.id, event)));
    }
    const { ids, result } = await consumeWith(env, messages);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks.sort()).toEqual([...ids].sort());
    for (const [index, shop] of [onFirst, onSecond].entries()) {
      const db = SHARDS[index];
      if (!db) throw new Error("two shards are bound in tests");
      expect(await transactionsOn(db, shop.merchant.merchant.id)).toEqual([{ id: payments[index]?.id, status: "completed" }]);
    }
  });

  /** One card payment at each shop, and the deliveries of its events, shop by shop. */
  async function paymentsWithDeliveries(shops: readonly Shop[], amount: string) {
    const payments = await Promise.all(shops.map((shop) => shop.pay({ card: "4242424242424242", amount, currency: "GBP" })));
    const deliveries = await Promise.all(
      shops.map(async (shop, index) =>
        (await shop.truth()).events
          .filter((event) => event.transaction_id === payments[index]?.id)
          .map((event) => deliveryOf(shop.merchant.merchant.id, event)),
      ),
    );
    return { payments, deliveries };
  }

  const settledEvents = (db: D1Database, merchantId: string) =>
    db
      .prepare("SELECT count(*) AS n FROM events WHERE merchant_id = ? AND outcome IN ('applied', 'stale')")
      .bind(merchantId)
      .first<{ n: number }>();

  it("a shard that is down fails its part of the batch alone: its messages are retried, the other shard's acked and applied", async () => {
    const [onFirst, onSecond] = await shopsOnBothShards();
    const { payments, deliveries } = await paymentsWithDeliveries([onFirst, onSecond], "4.00");
    const [first = [], second = []] = deliveries;

    // Every call to shard 1 fails for this batch, reads included: its consumer part throws before any work.
    const down = { ...env, DB_SHARD_1: unreachable(env.DB_SHARD_1) };
    const { ids, result } = await consumeWith(down, [...first, ...second]);
    expect(result.explicitAcks.sort()).toEqual(ids.slice(0, first.length).sort());
    expect(result.retryMessages.map((retry) => retry.msgId).sort()).toEqual(ids.slice(first.length).sort());
    expect(await transactionsOn(env.DB, onFirst.merchant.merchant.id)).toEqual([{ id: payments[0]?.id, status: "completed" }]);
    expect(await transactionsOn(env.DB_SHARD_1, onSecond.merchant.merchant.id)).toEqual([]);

    // The retried messages come again once the shard is back: applied; shard 0's part is not applied a second time.
    const before = await settledEvents(env.DB, onFirst.merchant.merchant.id);
    const again = await consumeWith(env, second);
    expect(again.result.retryMessages).toEqual([]);
    expect(await transactionsOn(env.DB_SHARD_1, onSecond.merchant.merchant.id)).toEqual([{ id: payments[1]?.id, status: "completed" }]);
    expect(await settledEvents(env.DB, onFirst.merchant.merchant.id)).toEqual(before);
  });

  it("a failed commit on one shard puts back that shard's deliveries only; they are applied later, the other shard's once", async () => {
    const [onFirst, onSecond] = await shopsOnBothShards();
    const { payments, deliveries } = await paymentsWithDeliveries([onFirst, onSecond], "5.00");
    const [first = [], second = []] = deliveries;

    // Shard 1 reads but cannot commit: its consumer puts its deliveries back on the queue (a fresh message each).
    const { ids, result } = await consumeWith({ ...env, DB_SHARD_1: failingBatches(env.DB_SHARD_1) }, [...first, ...second]);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks.sort()).toEqual([...ids].sort());
    expect(await transactionsOn(env.DB, onFirst.merchant.merchant.id)).toEqual([{ id: payments[0]?.id, status: "completed" }]);
    expect(await transactionsOn(env.DB_SHARD_1, onSecond.merchant.merchant.id)).toEqual([]);
    const before = await settledEvents(env.DB, onFirst.merchant.merchant.id);

    // The worker's own consumer takes the put-back deliveries from the queue and commits them on shard 1.
    await eventually(
      async () =>
        expect(await transactionsOn(env.DB_SHARD_1, onSecond.merchant.merchant.id)).toEqual([{ id: payments[1]?.id, status: "completed" }]),
      { timeoutMs: 15_000 },
    );
    expect(await settledEvents(env.DB_SHARD_1, onSecond.merchant.merchant.id)).toEqual({ n: second.length });
    expect(await settledEvents(env.DB, onFirst.merchant.merchant.id)).toEqual(before);
  });

  it("lists the merchants of every shard in one keyset walk, by id", async () => {
    const [onFirst, onSecond] = await shopsOnBothShards();
    const wanted = new Set([onFirst.merchant.merchant.id, onSecond.merchant.merchant.id]);
    const seen: string[] = [];
    let cursor: string | null = null;
    // Ends at the last page (next_cursor null); every page is 100 merchants, so a test run's merchants take a few pages.
    for (let page = 0; page < 100; page += 1) {
      const query: string = cursor ? `?limit=100&cursor=${cursor}` : "?limit=100";
      const body = (await (await call(`/admin/merchants${query}`, { headers: ADMIN })).json()) as {
        merchants: { id: string }[];
        next_cursor: string | null;
      };
      seen.push(...body.merchants.map((merchant) => merchant.id));
      cursor = body.next_cursor;
      if (cursor === null) break;
    }
    expect(seen.filter((id) => wanted.has(id)).sort()).toEqual([...wanted].sort());
    expect([...seen].sort()).toEqual(seen);
    expect(new Set(seen).size).toBe(seen.length);
  });
});
