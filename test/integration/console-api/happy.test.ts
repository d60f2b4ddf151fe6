import { describe, expect, it } from "vitest";
import { batchPageResponse } from "../../../src/routes/batches";
import { budgetResponse, pipelineResponse } from "../../../src/routes/operations";
import { timelineResponse } from "../../../src/timeline/api-schemas";
import { appWithVars } from "../../support/app";
import { ADMIN, call, deliver } from "../../support/fixtures";
import { eventually, openShop } from "../../support/sandbox";
import { getJson, seedTransactions, transactionRow } from "../../support/status-api";
import {
  asAdmin,
  budgetOf,
  drainTokens,
  entriesOf,
  eventsOfPayment,
  expectConforms,
  getAs,
  limiterOf,
  type Pipeline,
  pipelineOf,
  sinkAnswers,
  type Timeline,
  type TimelineEntry,
  timelineOf,
  untilStatus,
  walkMerchants,
} from "./support";

describe("GET /v1/transactions/{id}/timeline", () => {
  it("shows a real payment: deliveries, a duplicate, fetch-backs, state changes, a failed then a delivered fulfilment", async () => {
    const shop = await openShop({ fulfillment: true, unlimited: true });
    const apiKey = shop.merchant.api_key;
    await sinkAnswers(shop, 503, 1);
    const payment = await shop.pay({ card: "4242424242424242", amount: "12.00", currency: "EUR", capture: "manual" });
    await shop.relay({ rounds: 10 });
    await untilStatus(shop, payment.id, "authorized");

    // Smart Router delivers the authorization once more: a duplicate, settled without a fetch-back.
    const authorized = (await eventsOfPayment(shop, payment.id)).find((event) => event.name === "transaction.authorized");
    if (!authorized) throw new Error("no authorized event");
    expect((await deliver(shop.merchant, { event_id: authorized.id, event_type: authorized.name })).status).toBe(200);
    await eventually(async () => {
      expect(entriesOf(await timelineOf(apiKey, payment.id), "delivery").some((entry) => entry.detail.duplicate)).toBe(true);
    });

    await shop.act(payment.id, "capture");
    await shop.relay({ rounds: 10 });
    const timeline: Timeline = await eventually(
      async () => {
        const shown = await timelineOf(apiKey, payment.id);
        expect(entriesOf(shown, "fulfillment_attempt").map((entry) => entry.detail.outcome)).toEqual(["failed", "delivered"]);
        return shown;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );

    const events = await eventsOfPayment(shop, payment.id);
    expect(events.map((event) => event.name).sort()).toEqual(["transaction.authorized", "transaction.captured", "transaction.requested"]);
    const captured = events.find((event) => event.name === "transaction.captured");

    expectConforms(timelineResponse, { timeline }, "timeline");
    // Oldest first, every entry a sentence.
    const times = timeline.map((entry) => entry.at);
    expect(times).toEqual([...times].sort());
    for (const entry of timeline) expect(entry.summary).toMatch(/^[A-Z].+\.$/);

    // One first delivery per event, and the one duplicate of the authorization.
    const deliveries = entriesOf(timeline, "delivery");
    expect(
      deliveries
        .filter((entry) => !entry.detail.duplicate)
        .map((entry) => entry.detail.event_id)
        .sort(),
    ).toEqual(events.map((event) => event.id).sort());
    expect(deliveries.filter((entry) => entry.detail.duplicate).map((entry) => entry.detail.event_id)).toEqual([authorized.id]);
    expect(deliveries.find((entry) => entry.detail.duplicate)?.summary).toMatch(/duplicate/);

    // Every event was fetched back and verified once; the duplicate cost none.
    const fetchBacks = entriesOf(timeline, "fetch_back");
    expect(fetchBacks.map((entry) => entry.detail.event_id).sort()).toEqual(events.map((event) => event.id).sort());
    for (const entry of fetchBacks) {
      expect(entry.detail).toMatchObject({ outcome: "verified", error: null });
      expect(entry.detail.api_calls).toBeGreaterThanOrEqual(1);
      expect(entry.detail.pace_wait_ms).toBeGreaterThanOrEqual(0);
    }

    // State changes from the first status seen to completed, the capture caused by its own event.
    const changes = entriesOf(timeline, "state_change");
    expect(changes[0]?.detail.from).toBeNull();
    expect(changes.at(-1)?.detail).toEqual({
      from: "authorized",
      to: "completed",
      cause: { kind: "event", event_id: captured?.id, event_name: "transaction.captured" },
    });
    for (const [index, change] of changes.entries()) {
      if (index > 0) expect(change.detail.from).toBe(changes[index - 1]?.detail.to);
    }

    // The failed attempt names the merchant's status; the second one delivered; no answer body anywhere.
    const attempts = entriesOf(timeline, "fulfillment_attempt");
    expect(attempts.map((entry) => entry.detail)).toEqual([
      { attempt: 1, outcome: "failed", http_status: 503, error_class: "http_status" },
      { attempt: 2, outcome: "delivered", http_status: 200, error_class: null },
    ]);
    // The sink answered `{"success":false,"received":true}` to the first attempt: nothing of it is kept.
    expect(JSON.stringify(timeline)).not.toMatch(/success|"received"/);

    // The capture's delivery, then its fetch-back, then the state change it caused, then the notification.
    const position = (entry: TimelineEntry | undefined) => (entry === undefined ? -1 : timeline.indexOf(entry));
    const capturedDelivery = deliveries.find((entry) => entry.detail.event_id === captured?.id);
    const capturedFetch = fetchBacks.find((entry) => entry.detail.event_id === captured?.id);
    expect(position(capturedDelivery)).toBeGreaterThanOrEqual(0);
    expect(position(capturedDelivery)).toBeLessThan(position(capturedFetch));
    expect(position(capturedFetch)).toBeLessThan(position(changes.at(-1)));
    expect(position(changes.at(-1))).toBeLessThan(position(attempts[0]));
  });

  it("shows a fetch-back our pacer held back, then its verification", async () => {
    const rpm = 30;
    const shop = await openShop({ settings: { rates: { sandbox: rpm } } });
    const settings = { sandbox_rpm: rpm };
    await call(`/admin/merchants/${shop.merchant.merchant.id}`, {
      method: "PATCH",
      headers: ADMIN,
      body: JSON.stringify({ rate_limits: settings }),
    });
    const payment = await shop.pay({ card: "4242424242424242", amount: "5.00", currency: "EUR" });
    // Other traffic has just spent the project's burst: the next token comes within one interval (60 s / 28.5, about 2.1 s),
    // longer than a wait taken in place (200 ms), so the fetch-back is postponed by that long.
    expect(await drainTokens(shop.projectId, settings)).toBeGreaterThan(0);
    await shop.relay({ rounds: 10 });
    await untilStatus(shop, payment.id, "completed");

    const timeline = await eventually(
      async () => {
        const fetchBacks = entriesOf(await timelineOf(shop.merchant.api_key, payment.id), "fetch_back");
        expect(fetchBacks.filter((entry) => entry.detail.outcome === "verified")).toHaveLength(3);
        return fetchBacks;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    expect(timeline.reduce((sum, entry) => sum + entry.detail.pace_wait_ms, 0)).toBeGreaterThan(0);
    const postponed = timeline.filter((entry) => entry.detail.outcome === "retry");
    expect(postponed.length).toBeGreaterThan(0);
    for (const entry of postponed) {
      expect(entry.detail.error).toMatch(/^rate_limited: local sandbox budget exhausted/);
      expect(entry.detail.pace_wait_ms).toBeGreaterThan(200);
      expect(entry.detail.api_calls).toBe(0);
      expect(entry.summary).toMatch(/postponed \d+ ms by our pacer/);
    }
  });
});

describe("GET /v1/pipeline", () => {
  it("counts what was sent: first deliveries by outcome, duplicates, forged deliveries rejected, and the lag", async () => {
    const shop = await openShop({ unlimited: true, settings: { chaos: { forge_rate: 1 } } });
    const apiKey = shop.merchant.api_key;
    const payment = await shop.pay({ card: "4242424242424242", amount: "9.00", currency: "EUR" });
    await shop.relay({ rounds: 10 });
    await untilStatus(shop, payment.id, "completed");
    const events = await eventsOfPayment(shop, payment.id);
    const first = events[0];
    if (!first) throw new Error("no event");
    expect((await deliver(shop.merchant, { event_id: first.id, event_type: first.name })).status).toBe(200);

    // Each event was sent once more with an id Smart Router does not know: rejected after its recheck.
    const pipeline = await eventually(
      async () => {
        const shown = await pipelineOf(apiKey);
        expect(shown.outcomes).toMatchObject({ duplicate: 1, rejected: events.length, pending: 0, ignored: 0 });
        return shown;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    expectConforms(pipelineResponse, { pipeline }, "pipeline");
    expect(pipeline.outcomes.applied + pipeline.outcomes.stale).toBe(events.length);
    expect(pipeline.outcomes.applied).toBeGreaterThanOrEqual(1);
    expect(pipeline.deliveries_per_minute.reduce((sum, minute) => sum + minute.count, 0)).toBe(2 * events.length + 1);
    expect(pipeline.deliveries_per_minute).toHaveLength(61);
    expect(Date.parse(pipeline.to) - Date.parse(pipeline.from)).toBe(60 * 60_000);
    expect(pipeline.lag_ms.p50).toEqual(expect.any(Number));
    expect(pipeline.lag_ms.p99 ?? 0).toBeGreaterThanOrEqual(pipeline.lag_ms.p50 ?? 0);
    expect(pipeline.waiting).toEqual({ pending_events: 0, retries_scheduled: 0 });
    expect(pipeline.dead_letters).toBe(0);
    expect(pipeline.reconciliation.runs).toBeGreaterThanOrEqual(0);

    // A one-minute window holds the minute boundaries it touches.
    expect((await pipelineOf(apiKey, "?window_minutes=1")).deliveries_per_minute).toHaveLength(2);
  });

  it("shows what is waiting: a fetch-back Smart Router failed is pending and scheduled again", async () => {
    const shop = await openShop({ unlimited: true, settings: { chaos: { api_5xx_rate: 1 } } });
    const payment = await shop.pay({ card: "4242424242424242", amount: "3.00", currency: "EUR" });
    await shop.relay({ rounds: 10 });
    const waiting = await eventually(async () => {
      const { waiting } = await pipelineOf(shop.merchant.api_key);
      expect(waiting.retries_scheduled).toBeGreaterThan(0);
      return waiting;
    });
    expect(waiting.pending_events).toBeGreaterThanOrEqual(waiting.retries_scheduled);
    await shop.settings({ chaos: { api_5xx_rate: 0 } });
    await untilStatus(shop, payment.id, "completed");
  });

  it("shows the merchant's backlog from its inbox, with the oldest delivery's age, and an empty one once applied", async () => {
    const shop = await openShop({ unlimited: true, settings: { chaos: { api_5xx_rate: 1 } } });
    const payment = await shop.pay({ card: "4242424242424242", amount: "4.00", currency: "EUR" });
    const paidAt = Date.now();
    await shop.relay({ rounds: 10 });
    const shown = await eventually(async () => {
      const pipeline = await pipelineOf(shop.merchant.api_key);
      expect(pipeline.backlog.count).toBeGreaterThan(0);
      return pipeline;
    });
    expectConforms(pipelineResponse, { pipeline: shown }, "pipeline");
    expect(shown.backlog.source).toBe("inbox");
    expect(shown.backlog.count).toBe(shown.waiting.pending_events);
    // The oldest is a delivery of this payment: accepted after it was created, and its age counts from then to the answer.
    const oldest = Date.parse(shown.backlog.oldest_received_at ?? "");
    expect(oldest).toBeGreaterThanOrEqual(paidAt - 1000);
    expect(shown.backlog.oldest_age_seconds).toBe(Math.max(0, Math.round((Date.parse(shown.to) - oldest) / 1000)));
    // A merchant key never sees the shared queue.
    expect(shown.webhook_queue).toBeNull();

    await shop.settings({ chaos: { api_5xx_rate: 0 } });
    await untilStatus(shop, payment.id, "completed");
    await eventually(async () => {
      expect((await pipelineOf(shop.merchant.api_key)).backlog).toEqual({
        source: "inbox",
        count: 0,
        oldest_received_at: null,
        oldest_age_seconds: null,
      });
    });
  });

  it("shows the admin token the webhook queue's own metrics, every merchant's messages", async () => {
    const shop = await openShop({ unlimited: true });
    const { pipeline } = await getAs<{ pipeline: Pipeline }>("/v1/pipeline", asAdmin(shop.merchant.merchant.id));
    expectConforms(pipelineResponse, { pipeline }, "pipeline");
    const queue = pipeline.webhook_queue;
    if (queue === null) throw new Error("the admin token got no webhook_queue");
    expect(queue.backlog_count).toBeGreaterThanOrEqual(0);
    expect(queue.backlog_bytes).toBeGreaterThanOrEqual(0);
    // The age is the oldest message's, measured at the answer.
    if (queue.oldest_message_at === null) expect(queue.oldest_age_seconds).toBeNull();
    else
      expect(queue.oldest_age_seconds).toBe(
        Math.max(0, Math.round((Date.parse(pipeline.to) - Date.parse(queue.oldest_message_at)) / 1000)),
      );
  });
});

describe("GET /v1/budget", () => {
  it("reflects the calls made: tokens left, the rate learned from Smart Router, the batch lane, a closed breaker", async () => {
    // One call a minute at Smart Router and here: each call spends a token that comes back only after a minute.
    const shop = await openShop({ settings: { rates: { sandbox: 1 } } });
    await call(`/admin/merchants/${shop.merchant.merchant.id}`, {
      method: "PATCH",
      headers: ADMIN,
      body: JSON.stringify({ rate_limits: { sandbox_rpm: 1, batch_share: 0.5 } }),
    });
    // Registration's credential probe took a token at the default rate, before the answer taught ours: it comes back in ms.
    const before = await eventually(async () => {
      const shown = await budgetOf(shop.merchant.api_key);
      expect(shown.buckets[0]?.tokens_left).toBe(4);
      return shown;
    });
    expect(before).toEqual({
      project_id: shop.projectId,
      buckets: [
        {
          bucket: "sandbox",
          rate_per_minute: 1,
          tokens_left: 4,
          batch_rate_per_minute: expect.any(Number),
          batch_share: 0.5,
          recent_429s: [],
        },
      ],
      breaker: { state: "closed", since: null },
    });
    // The batch lane never exceeds its share of what we plan to use (95% of the rate).
    expect(before.buckets[0]?.batch_rate_per_minute).toBeGreaterThan(0);
    expect(before.buckets[0]?.batch_rate_per_minute).toBeLessThanOrEqual(0.48);

    const payment = await shop.pay({ card: "4242424242424242", amount: "7.00", currency: "EUR" });
    await shop.relay({ rounds: 10 });
    await untilStatus(shop, payment.id, "completed");
    const calls = entriesOf(await timelineOf(shop.merchant.api_key, payment.id), "fetch_back").reduce(
      (sum, entry) => sum + entry.detail.api_calls,
      0,
    );
    expect(calls).toBeGreaterThan(0);
    const counters = (await shop.counters()) as { api: { sandbox: { requests: number } } };
    // Registration made one call (the credential probe); every other one was a fetch-back.
    expect(counters.api.sandbox.requests).toBe(calls + 1);
    const after = await budgetOf(shop.merchant.api_key);
    expect(after.buckets[0]?.tokens_left).toBe(4 - calls);
  });

  it("lists Smart Router's recent 429s", async () => {
    const shop = await openShop({ unlimited: true, settings: { chaos: { api_429_rate: 1 } } });
    const payment = await shop.pay({ card: "4242424242424242", amount: "4.00", currency: "EUR" });
    await shop.relay({ rounds: 10 });
    const budget = await eventually(async () => {
      const shown = await budgetOf(shop.merchant.api_key);
      expect(shown.buckets[0]?.recent_429s.length).toBeGreaterThan(0);
      return shown;
    });
    expectConforms(budgetResponse, { budget }, "budget");
    for (const at of budget.buckets[0]?.recent_429s ?? []) expect(new Date(at).toISOString()).toBe(at);
    await shop.settings({ chaos: { api_429_rate: 0 } });
    await untilStatus(shop, payment.id, "completed");
  });

  it("shows the circuit breaker open since it opened, then half open when a probe is due", async () => {
    const shop = await openShop();
    const stub = limiterOf(shop.projectId);
    for (let i = 0; i < 5; i++) await stub.observe({ bucket: "sandbox", status: 503 }, null);
    const open = await budgetOf(shop.merchant.api_key);
    expect(open.breaker.state).toBe("open");
    expect(Date.parse(open.breaker.since ?? "")).toBeGreaterThan(Date.now() - 60_000);
    // The probe interval is 1 s in tests (vitest.config.ts).
    const halfOpen = await eventually(async () => {
      const shown = await budgetOf(shop.merchant.api_key);
      expect(shown.breaker.state).toBe("half_open");
      return shown;
    });
    expect(halfOpen.breaker.since).toBe(open.breaker.since);
    await stub.observe({ bucket: "sandbox", status: 200 }, null);
    expect((await budgetOf(shop.merchant.api_key)).breaker).toEqual({ state: "closed", since: null });
  });
});

describe("GET /v1/batches", () => {
  it("lists the merchant's batches newest first, in keyset pages, each as GET /v1/batches/{id} shows it", async () => {
    const shop = await openShop({ unlimited: true });
    const apiKey = shop.merchant.api_key;
    const created: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await call("/v1/batches", {
        method: "POST",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ kind: "refresh", transaction_ids: [`tr_listed${i}`] }),
      });
      expect(response.status).toBe(202);
      const { batch } = (await response.json()) as { batch: { id: string } };
      // Cancelled, so the listing and the single read see the same state.
      await call(`/v1/batches/${batch.id}`, { method: "DELETE", headers: { authorization: `Bearer ${apiKey}` } });
      created.push(batch.id);
    }
    const first = await getJson<{ batches: { id: string }[]; next_cursor: string | null }>("/v1/batches?limit=2", apiKey);
    expectConforms(batchPageResponse, first, "batches");
    expect(first.batches).toHaveLength(2);
    expect(first.next_cursor).toEqual(expect.any(String));
    const second = await getJson<{ batches: { id: string }[]; next_cursor: string | null }>(
      `/v1/batches?limit=2&cursor=${first.next_cursor}`,
      apiKey,
    );
    expect(second.next_cursor).toBeNull();
    const listed = [...first.batches, ...second.batches];
    expect(listed.map((batch) => batch.id)).toEqual([...created].reverse());
    for (const batch of listed) {
      expect(batch).toEqual((await getJson<{ batch: unknown }>(`/v1/batches/${batch.id}`, apiKey)).batch);
    }
    expect(await getJson("/v1/batches", apiKey)).toMatchObject({ next_cursor: null });
  });
});

describe("GET /v1/transactions?payment_type=", () => {
  it("filters by payment type, keeps the filter across pages, and combines with status", async () => {
    const shop = await openShop();
    const id = shop.merchant.merchant.id;
    const rows = await seedTransactions([
      transactionRow(id, { paymentType: "card", status: "completed" }),
      transactionRow(id, { paymentType: "sandbox-apm", status: "completed" }),
      transactionRow(id, { paymentType: "sandbox-apm", status: "pending" }),
      transactionRow(id, { paymentType: null }),
    ]);
    const apm = rows.filter((row) => row.paymentType === "sandbox-apm").map((row) => row.id);
    const page = await getJson<{ transactions: { id: string; payment_type: string }[]; next_cursor: string }>(
      "/v1/transactions?payment_type=sandbox-apm&limit=1",
      shop.merchant.api_key,
    );
    const next = await getJson<{ transactions: { id: string; payment_type: string }[]; next_cursor: string | null }>(
      `/v1/transactions?cursor=${page.next_cursor}`,
      shop.merchant.api_key,
    );
    expect([...page.transactions, ...next.transactions].map((t) => t.id).sort()).toEqual(apm.sort());
    expect(next.next_cursor).toBeNull();
    const completedApm = await getJson<{ transactions: { id: string }[] }>(
      "/v1/transactions?payment_type=sandbox-apm&status=completed",
      shop.merchant.api_key,
    );
    expect(completedApm.transactions.map((t) => t.id)).toEqual([rows[1]?.id]);
    const cards = await getJson<{ transactions: { id: string }[] }>("/v1/transactions?payment_type=card", shop.merchant.api_key);
    expect(cards.transactions.map((t) => t.id)).toEqual([rows[0]?.id]);
  });
});

describe("the admin token acting as a merchant", () => {
  it("reads every console endpoint as the merchant named by X-Merchant-Id", async () => {
    const shop = await openShop({ unlimited: true });
    const id = shop.merchant.merchant.id;
    const [row] = await seedTransactions([transactionRow(id)]);
    for (const path of ["/v1/transactions", `/v1/transactions/${row?.id}`, `/v1/transactions/${row?.id}/timeline`, "/v1/batches"]) {
      expect(await getAs(path, asAdmin(id)), path).toEqual(await getJson(path, shop.merchant.api_key));
    }
    const pipeline = await getAs<{ pipeline: { outcomes: unknown; waiting: unknown } }>("/v1/pipeline", asAdmin(id));
    expect(pipeline.pipeline).toMatchObject({
      outcomes: (await pipelineOf(shop.merchant.api_key)).outcomes,
      waiting: { pending_events: 0 },
    });
    // Tokens come back with time: the rest of the budget is the same read.
    const { budget } = await getAs<{ budget: { project_id: string; breaker: unknown } }>("/v1/budget", asAdmin(id));
    expect(budget).toMatchObject({ project_id: shop.projectId, breaker: (await budgetOf(shop.merchant.api_key)).breaker });
  });

  it("accepts ADMIN_TOKEN_PREVIOUS during a rotation", async () => {
    const shop = await openShop();
    const previous = "previous-admin-token-0123456789";
    const fetchWith = appWithVars({ ADMIN_TOKEN_PREVIOUS: previous });
    const response = await fetchWith("/v1/transactions", { headers: asAdmin(shop.merchant.merchant.id, previous) });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ transactions: [], next_cursor: null });
  });

  it("records its writes in the admin audit, and not its reads", async () => {
    const shop = await openShop({ unlimited: true });
    const id = shop.merchant.merchant.id;
    await getAs("/v1/batches", asAdmin(id));
    const response = await call("/v1/batches", {
      method: "POST",
      headers: { ...asAdmin(id), "content-type": "application/json" },
      body: JSON.stringify({ kind: "refresh", transaction_ids: ["tr_audited"] }),
    });
    expect(response.status).toBe(202);
    const { batch } = (await response.json()) as { batch: { id: string } };
    expect((await call(`/v1/batches/${batch.id}`, { method: "DELETE", headers: asAdmin(id) })).status).toBe(200);
    const audit = await getAs<{ entries: { action: string; target: string; request_id: string }[] }>("/admin/audit", ADMIN);
    const mine = audit.entries.filter((entry) => entry.target.startsWith(`merchant:${id}/`));
    expect(mine.map((entry) => entry.target).sort()).toEqual([
      `merchant:${id}/DELETE /v1/batches/${batch.id}`,
      `merchant:${id}/POST /v1/batches`,
    ]);
    expect(mine.every((entry) => entry.action === "status_api.write")).toBe(true);
  });
});

describe("GET /admin/merchants", () => {
  it("lists every merchant by id in keyset pages, without secrets", async () => {
    const shops = [await openShop(), await openShop()];
    const wanted = new Set(shops.map((shop) => shop.merchant.merchant.id));
    const { merchants: seen, lastCursor } = await walkMerchants();
    expect(lastCursor).toBeNull();
    const ids = seen.map((merchant) => merchant.id);
    expect(ids).toEqual([...ids].sort());
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of wanted) expect(ids).toContain(id);
    const one = seen.find((merchant) => merchant.id === shops[0]?.merchant.merchant.id);
    expect(one).toEqual((await getAs<{ merchant: unknown }>(`/admin/merchants/${one?.id}`, ADMIN)).merchant);

    const small = await getAs<{ merchants: unknown[]; next_cursor: string | null }>("/admin/merchants?limit=1", ADMIN);
    expect(small.merchants).toHaveLength(1);
    expect(small.next_cursor).toEqual(expect.any(String));
  });
});

describe("GET /v1/openapi.json", () => {
  interface Operation {
    parameters?: { name: string; in: string; required?: boolean }[];
    security?: Record<string, string[]>[];
    responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }>; headers?: object }>;
  }

  it("documents the console's routes: bearer security, the JSON schema of the answer, the error envelope", async () => {
    const doc = (await (await call("/v1/openapi.json")).json()) as { paths: Record<string, Record<string, Operation>> };
    const routes: [string, string[]][] = [
      ["/v1/transactions/{id}/timeline", ["400", "401", "404", "429"]],
      ["/v1/pipeline", ["400", "401", "429"]],
      ["/v1/budget", ["400", "401", "429"]],
      ["/v1/batches", ["400", "401", "429"]],
    ];
    for (const [path, statuses] of routes) {
      const operation = doc.paths[path]?.get;
      expect(operation, path).toBeDefined();
      expect(operation?.security, path).toEqual([{ merchantApiKey: [] }]);
      expect(operation?.responses["200"]?.content?.["application/json"]?.schema.$ref, path).toMatch(/^#\/components\/schemas\//);
      for (const status of statuses) {
        expect(operation?.responses[status]?.content?.["application/json"]?.schema.$ref, `${path} ${status}`).toBe(
          "#/components/schemas/Error",
        );
      }
    }
    expect(doc.paths["/v1/pipeline"]?.get?.parameters?.map((p) => p.name)).toEqual(["window_minutes"]);
    expect(doc.paths["/v1/batches"]?.get?.parameters?.map((p) => p.name).sort()).toEqual(["cursor", "limit"]);
    expect(doc.paths["/v1/transactions"]?.get?.parameters?.map((p) => p.name)).toContain("payment_type");
  });
});
