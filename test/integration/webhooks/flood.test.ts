import { createExecutionContext, createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../../../src/app";
import worker from "../../../src/index";
import type { WebhookMessage } from "../../../src/queue/messages";
import { pruneRejectedEvents, REJECTED_EVENTS_PRUNED_PER_RUN, rejectedEventsPrune } from "../../../src/retention/prune";
import { consume, deliveryOf } from "../../support/consumer";
import { ADMIN, basic, type CreatedMerchant, call, createMerchant } from "../../support/fixtures";
import { eventually, openShop } from "../../support/sandbox";
import { dbFor, shardedDb } from "../../support/shards";
import { dbOfMerchant } from "../../support/status-api";

type Envelope = { error: { code: string; message: string; request_id: string } };

/** A limiter that lets `allowed` calls per key through, then refuses; records every key it was asked about. */
function tightLimiter(allowed: number) {
  const calls: string[] = [];
  const limiter: RateLimit = {
    async limit({ key }) {
      calls.push(key);
      return { success: calls.filter((k) => k === key).length <= allowed };
    },
  };
  return { limiter, calls };
}

/** The app with this WEBHOOK_LIMITER in place of wrangler.toml's, recording what it enqueued. */
function appWithLimiter(limiter: RateLimit) {
  const sent: WebhookMessage[] = [];
  const app = createApp({
    deliveryQueue: () => ({
      send: async (message) => {
        sent.push(message);
      },
      wake: async () => {},
    }),
  });
  const bindings = { ...env, WEBHOOK_LIMITER: limiter };
  const post = (merchant: CreatedMerchant, eventId: string, authorization = basic(merchant.webhook.username, merchant.webhook.password)) =>
    app.fetch(
      new Request(`https://edge.test${merchant.webhook.path}`, {
        method: "POST",
        headers: { authorization },
        body: JSON.stringify({ event_id: eventId }),
      }),
      bindings,
    );
  return { sent, post };
}

/** Sets the merchant's edge limit (PATCH rate_limits.webhooks_rpm); 100 is one key of the binding, the merchant's id. */
async function setEdgeLimit(merchant: CreatedMerchant, webhooksRpm: number) {
  const patched = await call(`/admin/merchants/${merchant.merchant.id}`, {
    method: "PATCH",
    headers: { ...ADMIN, "content-type": "application/json" },
    body: JSON.stringify({ rate_limits: { webhooks_rpm: webhooksRpm } }),
  });
  expect(patched.status).toBe(200);
  expect(await patched.json()).toMatchObject({ merchant: { rate_limits: { webhooks_rpm: webhooksRpm } } });
}

const merchantRow = (merchantId: string) =>
  shardedDb
    .prepare("SELECT forged_deliveries AS count, last_forged_at AS last_at FROM merchants WHERE id = ?")
    .bind(merchantId)
    .first<{ count: number; last_at: string | null }>();
const inbox = (merchantId: string, eventId: string) =>
  shardedDb
    .prepare("SELECT outcome, deliveries FROM events WHERE merchant_id = ? AND id = ?")
    .bind(merchantId, eventId)
    .first<{ outcome: string; deliveries: number }>();

afterEach(() => {
  vi.restoreAllMocks();
});

describe("webhook edge: per-merchant limit", () => {
  it("accepts deliveries under the limit through wrangler.toml's WEBHOOK_LIMITER binding", async () => {
    const merchant = await createMerchant();
    for (const eventId of ["ev_limit1", "ev_limit2", "ev_limit3"]) {
      const response = await call(merchant.webhook.path, {
        method: "POST",
        headers: { authorization: basic(merchant.webhook.username, merchant.webhook.password) },
        body: JSON.stringify({ event_id: eventId }),
      });
      expect(response.status).toBe(200);
    }
  });

  it("answers 429 with Retry-After and the error envelope past the limit, and enqueues nothing for it", async () => {
    const merchant = await createMerchant();
    await setEdgeLimit(merchant, 100);
    const { limiter, calls } = tightLimiter(2);
    const app = appWithLimiter(limiter);
    expect((await app.post(merchant, "ev_flood1")).status).toBe(200);
    expect((await app.post(merchant, "ev_flood2")).status).toBe(200);
    const refused = await app.post(merchant, "ev_flood3");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("60");
    const envelope = (await refused.json()) as Envelope;
    expect(envelope.error).toMatchObject({ code: "rate_limited", request_id: expect.any(String) });
    expect(envelope.error.message).toMatch(/retry after 60 seconds/);
    expect(app.sent.map((message) => message.event_id)).toEqual(["ev_flood1", "ev_flood2"]);
    // Keyed by merchant id (one unit of the binding: its key is the id itself).
    expect(new Set(calls)).toEqual(new Set([merchant.merchant.id]));
  });

  it("a merchant's configured limit holds with the real binding: 100 a minute refuses the 101st, 150 rounds up to 200", async () => {
    const strict = await createMerchant();
    const roomier = await createMerchant();
    const spare = await createMerchant();
    await setEdgeLimit(strict, 100);
    await setEdgeLimit(roomier, 150);
    const app = appWithLimiter(env.WEBHOOK_LIMITER);
    // The binding counts in wall-clock minutes (its windows are aligned to the clock): start well inside one, so every
    // count below is one window's (a run that crossed a minute once let 202 of 230 through).
    const leftMs = 60_000 - (Date.now() % 60_000);
    if (leftMs < 20_000) await new Promise((resolve) => setTimeout(resolve, leftMs + 250));
    const minute = Math.floor(Date.now() / 60_000);
    const accepted = async (merchant: CreatedMerchant, deliveries: number) => {
      let ok = 0;
      for (let i = 0; i < deliveries; i++) {
        const status = (await app.post(merchant, `ev_unit${i}`)).status;
        expect([200, 429]).toContain(status);
        if (status === 200) ok += 1;
      }
      return ok;
    };
    expect(await accepted(strict, 110)).toBe(100);
    expect(await accepted(roomier, 230)).toBe(200);
    // The default (6,000 a minute) is many units: 250 in a row pass, well past one unit.
    expect(await accepted(spare, 250)).toBe(250);
    expect(Math.floor(Date.now() / 60_000), "the counts above span one window").toBe(minute);
  });

  it("refuses an edge limit below one unit or above the ceiling with a 400 naming the field", async () => {
    const merchant = await createMerchant();
    for (const webhooks_rpm of [50, 600_001, 1.5, "6000"]) {
      const response = await call(`/admin/merchants/${merchant.merchant.id}`, {
        method: "PATCH",
        headers: { ...ADMIN, "content-type": "application/json" },
        body: JSON.stringify({ rate_limits: { webhooks_rpm } }),
      });
      expect(response.status).toBe(400);
      expect(((await response.json()) as Envelope).error.message).toContain("rate_limits.webhooks_rpm");
    }
  });

  it("limits each merchant on its own: one merchant's flood leaves another's deliveries alone", async () => {
    const [flooded, neighbour] = [await createMerchant(), await createMerchant()];
    await setEdgeLimit(flooded, 100);
    const app = appWithLimiter(tightLimiter(1).limiter);
    expect((await app.post(flooded, "ev_a1")).status).toBe(200);
    expect((await app.post(flooded, "ev_a2")).status).toBe(429);
    expect((await app.post(neighbour, "ev_b1")).status).toBe(200);
  });

  it("takes the delivery when the limiter itself fails (it only shields the merchant's quota)", async () => {
    const merchant = await createMerchant();
    const failing: RateLimit = { limit: () => Promise.reject(new Error("rate limiter unavailable")) };
    const warnings = vi.spyOn(console, "warn");
    const app = appWithLimiter(failing);
    expect((await app.post(merchant, "ev_limiterdown")).status).toBe(200);
    expect(app.sent).toHaveLength(1);
    const line = warnings.mock.calls.map(([text]) => String(text)).find((text) => text.includes("webhook.rate_limiter_failed"));
    // The fields on-call filters by: the merchant, and the edge's request id on the delivery's own line.
    expect(JSON.parse(line ?? "{}")).toMatchObject({ merchant_id: merchant.merchant.id });
  });
});

describe("webhook edge: per-merchant limit, security", () => {
  it("counts only authenticated deliveries: without the credential a flood cannot lock the merchant out", async () => {
    const merchant = await createMerchant();
    const { limiter, calls } = tightLimiter(0);
    const app = appWithLimiter(limiter);
    for (const authorization of [basic(merchant.webhook.username, "wrong"), "", basic("sr_nobody", merchant.webhook.password)]) {
      expect((await app.post(merchant, "ev_forger", authorization)).status).toBe(401);
    }
    expect(calls).toEqual([]);
  });

  it("an unknown merchant is a 401, never a 429, even with the limiter refusing everything (no existence oracle)", async () => {
    const merchant = await createMerchant();
    await setEdgeLimit(merchant, 100);
    const app = appWithLimiter(tightLimiter(0).limiter);
    const ghost = { ...merchant, webhook: { ...merchant.webhook, path: "/webhooks/smart-router/ghost-of-a-merchant" } };
    expect((await app.post(ghost, "ev_ghost")).status).toBe(401);
    expect((await app.post(merchant, "ev_real")).status).toBe(429);
  });
});

describe("forged deliveries: counted per merchant", () => {
  it("a forged id is counted on its merchant once Smart Router refuses it twice, and shown by the admin API", async () => {
    const shop = await openShop();
    const merchantId = shop.merchant.merchant.id;
    const before = await (await call(`/admin/merchants/${merchantId}`, { headers: ADMIN })).json();
    expect(before).toMatchObject({ merchant: { forged_deliveries: { count: 0, last_at: null } } });

    const response = await call(shop.merchant.webhook.path, {
      method: "POST",
      headers: { authorization: basic(shop.merchant.webhook.username, shop.merchant.webhook.password) },
      body: JSON.stringify({ event_id: "ev_forgedcount1" }),
    });
    expect(response.status).toBe(200);
    await eventually(async () => expect((await inbox(merchantId, "ev_forgedcount1"))?.outcome).toBe("rejected"));
    const row = await merchantRow(merchantId);
    expect(row?.count).toBe(1);
    expect(Date.now() - Date.parse(row?.last_at ?? "")).toBeLessThan(60_000);
    const shown = (await (await call(`/admin/merchants/${merchantId}`, { headers: ADMIN })).json()) as {
      merchant: { forged_deliveries: unknown };
    };
    expect(shown.merchant.forged_deliveries).toEqual({ count: 1, last_at: row?.last_at });
  });

  it("counts every delivery of a forged id (its first 404 and its recheck alike), and no genuine event", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const payment = await shop.pay({ card: "4242424242424242", amount: "3.00", currency: "EUR" });
    await shop.relay({ rounds: 5 });
    const forged = deliveryOf(merchantId, { id: "ev_forgedthrice", name: "transaction.captured" });
    await consume([forged, { ...forged, delivery_id: crypto.randomUUID() }, { ...forged, delivery_id: crypto.randomUUID() }]);
    // The first 404 only postpones: Smart Router may not show the event yet.
    expect((await merchantRow(merchantId))?.count).toBe(0);
    // The recheck (FETCH_BACK_RECHECK_SECONDS later, through the real queue) finds it absent again: forged.
    await eventually(async () => expect((await inbox(merchantId, "ev_forgedthrice"))?.outcome).toBe("rejected"));
    expect(await inbox(merchantId, "ev_forgedthrice")).toEqual({ outcome: "rejected", deliveries: 3 });
    // The payment's genuine events were applied and not counted.
    await eventually(async () => {
      const applied = await shardedDb
        .prepare("SELECT count(*) AS n FROM events WHERE merchant_id = ? AND transaction_id = ? AND outcome = 'applied'")
        .bind(merchantId, payment.id)
        .first<{ n: number }>();
      expect(applied?.n).toBeGreaterThan(0);
    });
    expect((await merchantRow(merchantId))?.count).toBe(3);

    // A later delivery of the settled forged id costs no fetch-back and is not counted again.
    await consume([{ ...forged, delivery_id: crypto.randomUUID() }]);
    expect((await merchantRow(merchantId))?.count).toBe(3);
  });

  it("counts in the consumer's own D1 batch: a failed commit counts nothing, its retry counts once", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    // Already asked once (a recheck message), so this batch decides it is forged.
    const recheck = {
      ...deliveryOf(merchantId, { id: "ev_forgedfailed", name: "transaction.captured" }),
      not_found_at: new Date().toISOString(),
    };
    const batch = vi.spyOn(await dbFor(merchantId), "batch").mockRejectedValueOnce(new Error("D1 unavailable"));
    await consume([recheck]);
    expect(batch).toHaveBeenCalled();
    batch.mockRestore();
    // The consumer put the delivery back on the queue; the worker's own consumer takes it from there.
    await eventually(async () => expect((await inbox(merchantId, "ev_forgedfailed"))?.outcome).toBe("rejected"));
    expect((await merchantRow(merchantId))?.count).toBe(1);
  });
});

describe("forged deliveries: rejected inbox rows are pruned after 7 days", () => {
  const day = 24 * 3_600_000;
  const seed = (merchantId: string, id: string, outcome: string, processedAt: string | null, transactionId: string | null = null) =>
    shardedDb
      .prepare(
        "INSERT INTO events (merchant_id, id, outcome, transaction_id, deliveries, first_received_at, processed_at) VALUES (?, ?, ?, ?, 1, ?, ?)",
      )
      .bind(merchantId, id, outcome, transactionId, processedAt ?? new Date().toISOString(), processedAt)
      .run();
  const ids = async (merchantId: string) =>
    (await shardedDb.prepare("SELECT id FROM events WHERE merchant_id = ? ORDER BY id").bind(merchantId).all<{ id: string }>()).results.map(
      (row) => row.id,
    );

  it("deletes rejected rows older than 7 days and nothing else", async () => {
    const { merchant } = await createMerchant();
    const now = Date.now();
    const ago = (days: number) => new Date(now - days * day).toISOString();
    await seed(merchant.id, "ev_old_rejected", "rejected", ago(8));
    await seed(merchant.id, "ev_recent_rejected", "rejected", ago(6));
    await seed(merchant.id, "ev_old_applied", "applied", ago(30), "tr_old");
    await seed(merchant.id, "ev_old_ignored", "ignored", ago(30));
    await seed(merchant.id, "ev_old_pending", "pending", null);
    expect(await pruneRejectedEvents({ db: await dbOfMerchant(merchant.id), now })).toBeGreaterThanOrEqual(1);
    expect(await ids(merchant.id)).toEqual(["ev_old_applied", "ev_old_ignored", "ev_old_pending", "ev_recent_rejected"]);
    expect(await pruneRejectedEvents({ db: await dbOfMerchant(merchant.id), now })).toBe(0);
  });

  it(`deletes at most ${REJECTED_EVENTS_PRUNED_PER_RUN} rows a run; the next run takes the rest`, async () => {
    const { merchant } = await createMerchant();
    const now = Date.now();
    await shardedDb
      .prepare(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO events (merchant_id, id, outcome, deliveries, first_received_at, processed_at)
       SELECT ?, 'ev_flood' || i, 'rejected', 1, ?, ? FROM n`,
      )
      .bind(REJECTED_EVENTS_PRUNED_PER_RUN + 1, merchant.id, new Date(now - 9 * day).toISOString(), new Date(now - 9 * day).toISOString())
      .run();
    expect(await pruneRejectedEvents({ db: await dbOfMerchant(merchant.id), now })).toBe(REJECTED_EVENTS_PRUNED_PER_RUN);
    expect(await pruneRejectedEvents({ db: await dbOfMerchant(merchant.id), now })).toBe(1);
    expect(await ids(merchant.id)).toEqual([]);
  });

  it("searches an index per merchant (the rejected rows' own, or events_transaction), never scanning the inbox", async () => {
    const { sql, params } = new SQLiteAsyncDialect().sqlToQuery(rejectedEventsPrune(Date.now()));
    const plan = await shardedDb
      .prepare(`EXPLAIN QUERY PLAN ${sql}`)
      .bind(...params)
      .all<{ detail: string }>();
    const details = plan.results.map((row) => row.detail);
    expect(details.join("\n")).toMatch(
      /SEARCH e USING INDEX (events_rejected_processed \(merchant_id=\? AND processed_at<\?\)|events_transaction \(merchant_id=\? AND transaction_id=\?\))/,
    );
    expect(details.join("\n")).not.toMatch(/SCAN e\b/);
  });

  it("is a step of the Cron Trigger's run", async () => {
    const { merchant } = await createMerchant();
    // Dated 1990 like test/integration/scheduled.test.ts, so the other steps find nothing of the other tests.
    const when = Date.parse("1990-06-10T00:00:00.000Z");
    await seed(merchant.id, "ev_1990_rejected", "rejected", "1990-06-01T00:00:00.000Z");
    const logs = vi.spyOn(console, "log");
    await worker.scheduled(createScheduledController({ scheduledTime: when, cron: "*/5 * * * *" }), env, createExecutionContext());
    expect(await ids(merchant.id)).toEqual([]);
    const run = logs.mock.calls.map(([line]) => JSON.parse(String(line))).find((line) => line.message === "scheduled.run");
    expect(run).toMatchObject({ rejected_events_pruned: 1, failed_steps: [] });
  });
});
