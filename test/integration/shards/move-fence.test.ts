import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../../src/app";
import { type AppEnv, appConfig } from "../../../src/env";
import { QUEUE_SHARE } from "../../../src/ingest/backlog";
import { wakeupOf } from "../../../src/ingest/parking";
import { MOVE_GIVE_UP_MS, MOVE_LEASE_MS, nudgeStuckMoves, recordStepError, startMove } from "../../../src/moves/moves";
import type { WebhookMessage } from "../../../src/queue/messages";
import { consume, deliveryOf } from "../../support/consumer";
import { basic, call } from "../../support/fixtures";
import { countsOn, driveMove, jobOf, kindOf, shardDb, statusOf, stepQueue } from "../../support/moves";
import { eventually, openShop, SANDBOX, type Shop } from "../../support/sandbox";
import { shardIndexOf } from "../../support/shards";

const bindingOf = (index: number) => (index === 0 ? "DB" : `DB_SHARD_${index}`);
const json = { "content-type": "application/json" };

/** `id:status` of each transaction Smart Router holds for the shop, as `statusOf` lists them. */
const truthOf = async (shop: Shop) => (await shop.truth()).transactions.map((t) => `${t.id}:${t.status}`).sort();

/** A merchant with one captured card payment, applied. */
async function paidShop(): Promise<{ shop: Shop; transactionId: string; shard: number }> {
  const shop = await openShop({ unlimited: true });
  const payment = await shop.pay({ card: "4242424242424242", amount: "9.00", currency: "EUR" });
  await shop.relay();
  const truth = await truthOf(shop);
  await eventually(async () => expect(await statusOf(shop)).toEqual(truth));
  return { shop, transactionId: payment.id, shard: (await shardIndexOf(shop.merchant.merchant.id)) ?? 0 };
}

/** A status API write: a refresh batch of one transaction (a row on the merchant's shard). */
const refresh = (shop: Shop, transactionId: string) =>
  call("/v1/batches", {
    method: "POST",
    headers: { authorization: `Bearer ${shop.merchant.api_key}`, ...json },
    body: JSON.stringify({ kind: "refresh", transaction_ids: [transactionId] }),
  });

/** Carries each due webhook delivery of the shop to the edge once; answers the edge's statuses. */
async function relayOnce(shop: Shop): Promise<number[]> {
  const claim = await fetch(`${SANDBOX}/_sandbox/deliveries/claim?project=${shop.projectId}`, {
    method: "POST",
    headers: json,
    body: "{}",
  });
  const { deliveries } = (await claim.json()) as {
    deliveries: { id: string; url: string; headers: Record<string, string>; body: string }[];
  };
  const statuses: number[] = [];
  for (const delivery of deliveries) {
    const response = await call(new URL(delivery.url).pathname, { method: "POST", headers: delivery.headers, body: delivery.body });
    await response.body?.cancel();
    statuses.push(response.status);
  }
  return statuses;
}

const setMark = (shard: number, merchantId: string, state: "fenced" | null) =>
  state === null
    ? shardDb(shard).prepare("DELETE FROM move_marks WHERE merchant_id = ? AND move_id = 'mov_fence_test'").bind(merchantId).run()
    : shardDb(shard)
        .prepare("INSERT INTO move_marks (merchant_id, move_id, state) VALUES (?, 'mov_fence_test', ?)")
        .bind(merchantId, state)
        .run();

const appliedEvents = async (shard: number, merchantId: string, transactionId: string) =>
  (
    await shardDb(shard)
      .prepare("SELECT count(*) AS n FROM events WHERE merchant_id = ? AND transaction_id = ? AND outcome IN ('applied', 'stale')")
      .bind(merchantId, transactionId)
      .first<{ n: number }>()
  )?.n ?? 0;

/** Starts a move with its first message kept by the test (delivered by `driveMove`, or lost). */
const startKeptMove = (merchantId: string, to: number) =>
  startMove({ env, config: appConfig(env), queue: stepQueue().queue, merchantId, to: bindingOf(to) });

describe("a merchant fenced for its switch (errors)", () => {
  it("its deliveries are accepted and wait, a status API write is a 503 with Retry-After ≤ 30 s, reads answer 200; nothing is lost", async () => {
    const { shop, transactionId, shard } = await paidShop();
    const merchantId = shop.merchant.merchant.id;
    const late = await shop.pay({ card: "4242424242424242", amount: "4.00", currency: "EUR" });
    const events = (await shop.truth()).events.filter((e) => e.transaction_id === late.id);
    await setMark(shard, merchantId, "fenced");
    // Reads keep answering.
    const auth = { authorization: `Bearer ${shop.merchant.api_key}` };
    expect((await statusOf(shop)).map((t) => t.split(":")[0])).toContain(transactionId);
    expect((await call(`/v1/transactions/${transactionId}`, { headers: auth })).status).toBe(200);
    // A write waits for the switch.
    const write = await refresh(shop, transactionId);
    expect(write.status).toBe(503);
    const retryAfter = Number(write.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(30);
    expect(((await write.json()) as { error: { code: string } }).error.code).toBe("service_unavailable");
    // The edge accepts the deliveries; the consumer applies none of them under the fence and keeps them (no retry spent).
    expect(new Set(await relayOnce(shop))).toEqual(new Set([200]));
    const consumed = await consume(events.map((e) => deliveryOf(merchantId, e)));
    expect(consumed.retryMessages).toEqual([]);
    expect(await appliedEvents(shard, merchantId, late.id)).toBe(0);
    // The fence lifts (the switch, or a failed move): what waited is applied, once.
    await setMark(shard, merchantId, null);
    await eventually(async () => expect(await appliedEvents(shard, merchantId, late.id)).toBe(events.length), { timeoutMs: 20_000 });
    expect(await statusOf(shop)).toEqual(await truthOf(shop));
    expect((await refresh(shop, transactionId)).status).toBe(202);
  });
});

/** The edge with an in-memory delivery queue (what it enqueued, the wake-ups it sent), every delivery past the limiter. */
function edgeRecording() {
  const sent: WebhookMessage[] = [];
  const app = createApp({ deliveryQueue: () => ({ send: async (message) => void sent.push(message), wake: async () => undefined }) });
  const bindings = { ...env, WEBHOOK_LIMITER: { limit: async () => ({ success: true }) } };
  const post = async (shop: Shop, eventId: string, count: number) => {
    const { username, password, path } = shop.merchant.webhook;
    const statuses: number[] = [];
    for (let i = 0; i < count; i += 50) {
      const request = () =>
        new Request(`https://edge.test${path}`, {
          method: "POST",
          headers: { authorization: basic(username, password) },
          body: JSON.stringify({ event_id: eventId }),
        });
      const answers = await Promise.all(Array.from({ length: Math.min(50, count - i) }, () => app.fetch(request(), bindings)));
      for (const answer of answers) {
        statuses.push(answer.status);
        await answer.body?.cancel();
      }
    }
    return statuses;
  };
  return { sent, post };
}

describe("a merchant fenced for its switch, past its queue share (errors)", () => {
  it("its deliveries go on the queue when parking meets the fence; its parking's wake-up comes back after the fence", async () => {
    const shop = await openShop({ webhooks: false });
    const merchantId = shop.merchant.merchant.id;
    const shard = (await shardIndexOf(merchantId)) ?? 0;
    await shop.pay({ card: "4242424242424242", amount: "3.00", currency: "EUR" });
    const event = (await shop.truth()).events[0];
    if (!event) throw new Error("no event");
    const parked = async () =>
      (
        await shardDb(shard)
          .prepare("SELECT count(*) AS n FROM parked_deliveries WHERE merchant_id = ?")
          .bind(merchantId)
          .first<{ n: number }>()
      )?.n ?? 0;
    const { sent, post } = edgeRecording();
    expect(new Set(await post(shop, event.id, QUEUE_SHARE + 20))).toEqual(new Set([200]));
    expect(await parked()).toBe(20);
    await setMark(shard, merchantId, "fenced");
    expect(new Set(await post(shop, event.id, 10))).toEqual(new Set([200]));
    expect(sent).toHaveLength(QUEUE_SHARE + 10);
    expect(await parked()).toBe(20);
    // Another merchant of the shard, woken in the same batch, is not held back with it.
    const other = await openShop({ webhooks: false });
    const otherId = other.merchant.merchant.id;
    if ((await shardIndexOf(otherId)) !== shard) await driveMove({ moveId: (await startKeptMove(otherId, shard)).id });
    const held = await consume([wakeupOf(merchantId), wakeupOf(otherId)] as unknown as WebhookMessage[]);
    expect(held.retryMessages).toHaveLength(1);
    expect(held.explicitAcks).toHaveLength(1);
    expect(await parked()).toBe(20);
    await setMark(shard, merchantId, null);
    const resumed = await consume([wakeupOf(merchantId) as unknown as WebhookMessage]);
    expect(resumed.explicitAcks).toHaveLength(1);
    expect(await parked()).toBe(0);
  });
});

describe("a merchant fenced for its switch (security)", () => {
  it("the 503 names no merchant, table or statement", async () => {
    const { shop, transactionId, shard } = await paidShop();
    await setMark(shard, shop.merchant.merchant.id, "fenced");
    const text = await (await refresh(shop, transactionId)).text();
    await setMark(shard, shop.merchant.merchant.id, null);
    expect(text).not.toContain(shop.merchant.merchant.id);
    expect(text).not.toMatch(/merchant_fenced|move_marks|INSERT|batches|D1_/i);
  });
});

describe("after a merchant's switch (happy)", () => {
  it("reads and writes go to the new shard, and the old one takes none", async () => {
    const { shop, transactionId, shard: from } = await paidShop();
    const merchantId = shop.merchant.merchant.id;
    const move = await startKeptMove(merchantId, 1 - from);
    await driveMove({ moveId: move.id });
    expect((await jobOf(move.id)).status).toBe("completed");
    expect(await statusOf(shop)).toEqual(await truthOf(shop));
    expect((await refresh(shop, transactionId)).status).toBe(202);
    const batches = (shard: number) =>
      shardDb(shard).prepare("SELECT count(*) AS n FROM batches WHERE merchant_id = ?").bind(merchantId).first<{ n: number }>();
    expect((await batches(1 - from))?.n).toBe(1);
    expect((await batches(from))?.n).toBe(0);
    const next = await shop.pay({ card: "4000000000000002", amount: "2.00", currency: "EUR" });
    await shop.relay();
    await eventually(async () => expect(await statusOf(shop)).toContain(`${next.id}:failed`));
    expect(Object.values(await countsOn(shardDb(from), merchantId)).every((n) => n === 0)).toBe(true);
  });
});

describe("a stuck move (errors)", () => {
  it(`whose step message was lost is re-sent by the cron after ${MOVE_LEASE_MS / 60_000} min without progress, and completes`, async () => {
    const { shop, shard: from } = await paidShop();
    const merchantId = shop.merchant.merchant.id;
    const move = await startKeptMove(merchantId, 1 - from);
    await driveMove({ moveId: move.id, until: (_kind, n) => n === 3 });
    const stuck = await jobOf(move.id);
    const early = stepQueue();
    await nudgeStuckMoves({ env, queue: early.queue, now: Date.now() });
    expect(early.sent.filter((m) => m.move_id === move.id)).toEqual([]);
    const late = stepQueue();
    const result = await nudgeStuckMoves({ env, queue: late.queue, now: Date.now() + MOVE_LEASE_MS + 1_000 });
    expect(result.moves_nudged).toBeGreaterThanOrEqual(1);
    expect(late.sent.filter((m) => m.move_id === move.id)).toEqual([
      { v: 1, kind: "merchant_move", move_id: move.id, step: stuck.step, shard: 0 },
    ]);
    await driveMove({ moveId: move.id });
    expect((await jobOf(move.id)).status).toBe("completed");
    expect(await shardIndexOf(merchantId)).toBe(1 - from);
  });

  it(`stuck before its switch for ${MOVE_GIVE_UP_MS / 3_600_000} h fails with its last error, lifts its fence and leaves nothing on the target`, async () => {
    const { shop, transactionId, shard: from } = await paidShop();
    const merchantId = shop.merchant.merchant.id;
    const move = await startKeptMove(merchantId, 1 - from);
    // Stopped at its switch: the source is fenced.
    await driveMove({ moveId: move.id, until: (kind) => kind === "switch" });
    expect((await refresh(shop, transactionId)).status).toBe(503);
    await recordStepError({ env, moveId: move.id, error: "D1_ERROR: the target is unreachable" });
    const result = await nudgeStuckMoves({ env, queue: stepQueue().queue, now: Date.now() + MOVE_GIVE_UP_MS + 1_000 });
    expect(result.moves_failed).toBeGreaterThanOrEqual(1);
    const failed = await jobOf(move.id);
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatch(/^no progress for 6\.0 h at step \d+ \(switching\): D1_ERROR: the target is unreachable$/);
    expect(await shardIndexOf(merchantId)).toBe(from);
    expect(Object.values(await countsOn(shardDb(1 - from), merchantId)).every((n) => n === 0)).toBe(true);
    // Writes pass again on the shard it stayed on; a late step of the failed move changes nothing.
    expect((await refresh(shop, transactionId)).status).toBe(202);
    await driveMove({ moveId: move.id });
    expect((await jobOf(move.id)).status).toBe("failed");
    expect(Object.values(await countsOn(shardDb(1 - from), merchantId)).every((n) => n === 0)).toBe(true);
  });

  it("stuck after its switch is never failed: past the horizon it is re-sent and completes", async () => {
    const { shop, shard: from } = await paidShop();
    const merchantId = shop.merchant.merchant.id;
    const move = await startKeptMove(merchantId, 1 - from);
    await driveMove({ moveId: move.id, until: (kind) => kind === "cleaning" });
    expect(await kindOf(move.id)).toBe("cleaning");
    const late = stepQueue();
    const result = await nudgeStuckMoves({ env, queue: late.queue, now: Date.now() + MOVE_GIVE_UP_MS + 1_000 });
    expect(result.moves_failed).toBe(0);
    expect(late.sent.filter((m) => m.move_id === move.id)).toHaveLength(1);
    expect((await jobOf(move.id)).status).toBe("cleaning");
    await driveMove({ moveId: move.id });
    expect((await jobOf(move.id)).status).toBe("completed");
    expect(Object.values(await countsOn(shardDb(from), merchantId)).every((n) => n === 0)).toBe(true);
  });
});

/**
 * Two paid merchants on one shard (the second moved there if placed elsewhere), so their deliveries share one part of a
 * queue batch (one D1 commit), and one new payment of each with the deliveries of its events.
 */
async function twoMerchantsOneShard() {
  const fenced = await paidShop();
  const other = await paidShop();
  const shard = fenced.shard;
  if (other.shard !== shard) {
    const move = await startKeptMove(other.shop.merchant.merchant.id, shard);
    await driveMove({ moveId: move.id });
  }
  const paymentOf = async (shop: Shop) => {
    const payment = await shop.pay({ card: "4242424242424242", amount: "5.00", currency: "EUR" });
    const events = (await shop.truth()).events.filter((e) => e.transaction_id === payment.id);
    return { id: payment.id, deliveries: events.map((e) => deliveryOf(shop.merchant.merchant.id, e)) };
  };
  return { fenced, other, shard, waiting: await paymentOf(fenced.shop), applied: await paymentOf(other.shop) };
}

describe("a fenced merchant in a queue batch shared with others (happy)", () => {
  it("the other merchant's deliveries in the same batch are applied at once; the fenced one's wait, then apply", async () => {
    const { fenced, other, shard, waiting, applied } = await twoMerchantsOneShard();
    await setMark(shard, fenced.shop.merchant.merchant.id, "fenced");
    const result = await consume([...waiting.deliveries, ...applied.deliveries]);
    expect(result.retryMessages).toEqual([]);
    expect(await appliedEvents(shard, other.shop.merchant.merchant.id, applied.id)).toBe(applied.deliveries.length);
    expect(await appliedEvents(shard, fenced.shop.merchant.merchant.id, waiting.id)).toBe(0);
    await setMark(shard, fenced.shop.merchant.merchant.id, null);
    await eventually(
      async () => expect(await appliedEvents(shard, fenced.shop.merchant.merchant.id, waiting.id)).toBe(waiting.deliveries.length),
      {
        timeoutMs: 20_000,
      },
    );
  });

  it("a fence that lands while the batch's events are fetched back holds only its merchant: the others commit at once", async () => {
    const { fenced, other, shard, waiting, applied } = await twoMerchantsOneShard();
    // The switch's fence lands after the consumer looked for fences (classify) and before its commit: the commit aborts
    // on the fence trigger, as a move's switch does to a batch already past its check.
    const binding = bindingOf(shard);
    const real = (env as unknown as Record<string, D1Database>)[binding];
    if (!real) throw new Error(`no binding ${binding}`);
    let landed = false;
    const fencingAtCommit = new Proxy(real, {
      get(target, property) {
        if (property === "batch") {
          return async (statements: D1PreparedStatement[]) => {
            if (!landed) {
              landed = true;
              await setMark(shard, fenced.shop.merchant.merchant.id, "fenced");
            }
            return target.batch(statements);
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    try {
      const result = await consume([...waiting.deliveries, ...applied.deliveries], { ...(env as AppEnv), [binding]: fencingAtCommit });
      expect(landed).toBe(true);
      expect(result.retryMessages).toEqual([]);
      expect(await appliedEvents(shard, other.shop.merchant.merchant.id, applied.id)).toBe(applied.deliveries.length);
      expect(await appliedEvents(shard, fenced.shop.merchant.merchant.id, waiting.id)).toBe(0);
    } finally {
      await setMark(shard, fenced.shop.merchant.merchant.id, null);
    }
    await eventually(
      async () => expect(await appliedEvents(shard, fenced.shop.merchant.merchant.id, waiting.id)).toBe(waiting.deliveries.length),
      { timeoutMs: 20_000 },
    );
  });
});
