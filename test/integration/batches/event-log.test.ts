import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../../src/index";
import { ADMIN, call } from "../../support/fixtures";
import { eventually as eventuallyWithin, openShop, type Shop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";
import { archiveAll, historyAnswers, rowsInD1 } from "../retention/support";

/**
 * A cron run walks every merchant of the shared test database, not only this file's: what a walk brings can take a
 * while under the whole suite, so checks wait up to 30 s.
 */
const eventually = <T>(check: () => Promise<T>, options: { timeoutMs?: number; intervalMs?: number } = {}) =>
  eventuallyWithin(check, { intervalMs: 200, ...options, timeoutMs: Math.max(60_000, options.timeoutMs ?? 0) });

/** One Cron Trigger run, as Cloudflare would start it; its walks then run on the batch queue. */
async function runCron() {
  const ctx = createExecutionContext();
  await worker.scheduled?.(createScheduledController({ scheduledTime: Date.now(), cron: "*/5 * * * *" }), env, ctx);
  await waitOnExecutionContext(ctx);
}

const cursorOf = (merchantId: string) =>
  shardedDb
    .prepare("SELECT watermark_event_id, events_walked, api_calls, last_error FROM event_log_cursors WHERE merchant_id = ?")
    .bind(merchantId)
    .first<{ watermark_event_id: string | null; events_walked: number; api_calls: number; last_error: string | null }>();

async function matchesTruth(shop: Shop) {
  const truth = await shop.truth();
  const rows = await shardedDb
    .prepare("SELECT id, status, captured_amount, refunded_amount FROM transactions WHERE merchant_id = ?")
    .bind(shop.merchant.merchant.id)
    .all<{ id: string; status: string; captured_amount: string; refunded_amount: string }>();
  const stored = new Map(rows.results.map((row) => [row.id, row]));
  for (const t of truth.transactions) {
    expect(stored.get(t.id), t.id).toEqual({
      id: t.id,
      status: t.status,
      captured_amount: t.captured_amount,
      refunded_amount: t.refunded_amount,
    });
  }
  return truth;
}

describe("the event-log backstop", () => {
  it("applies transactions none of whose webhooks were ever sent, with no sync batch, at ≤ 0.02 calls per event walked", async () => {
    // No webhook endpoint at all: nothing is ever delivered.
    const shop = await openShop({ unlimited: true, webhooks: false, fulfillment: true });
    const merchantId = shop.merchant.merchant.id;
    for (let i = 0; i < 45; i++) {
      const card = i % 5 === 0 ? "4000000000000002" : "4242424242424242";
      await shop.pay({ card, amount: `${5 + i}.00`, currency: "EUR" });
    }
    const truth = await shop.truth();
    expect(truth.events.length).toBeGreaterThanOrEqual(100);
    await runCron();
    await eventually(() => matchesTruth(shop), { timeoutMs: 20_000, intervalMs: 200 });
    const cursor = await eventually(async () => {
      const row = await cursorOf(merchantId);
      expect(row?.events_walked).toBe(truth.events.length);
      return row;
    });
    expect((cursor?.api_calls ?? 0) / truth.events.length).toBeLessThanOrEqual(0.02);
    // The watermark is the newest event walked; a run with nothing new costs one call and changes nothing.
    expect(cursor?.watermark_event_id).toBe(truth.events.at(-1)?.id);
    // Captures found by the backstop are fulfilled like webhook ones: they happened after the URL was set.
    const fulfilled = await shardedDb
      .prepare("SELECT count(*) AS n FROM fulfillments WHERE merchant_id = ? AND status IN ('pending', 'delivered')")
      .bind(merchantId)
      .first<{ n: number }>();
    expect(fulfilled?.n).toBe(truth.transactions.filter((t) => t.status === "completed").length);
    await runCron();
    await eventually(async () => expect((await cursorOf(merchantId))?.api_calls).toBe((cursor?.api_calls ?? 0) + 1));
    expect((await cursorOf(merchantId))?.watermark_event_id).toBe(cursor?.watermark_event_id);
  }, 90_000);

  it("walks on from its watermark: a refund on a completed record that no webhook brought is applied by a later run", async () => {
    const shop = await openShop({ unlimited: true });
    const payment = await shop.pay({ card: "4242424242424242", amount: "30.00", currency: "EUR" });
    await shop.relay({ rounds: 5 });
    await eventually(async () => {
      const row = await shardedDb
        .prepare("SELECT status FROM transactions WHERE merchant_id = ? AND id = ?")
        .bind(shop.merchant.merchant.id, payment.id)
        .first<{ status: string }>();
      expect(row?.status).toBe("completed");
    });
    await runCron();
    await eventually(async () => expect((await cursorOf(shop.merchant.merchant.id))?.events_walked).toBeGreaterThan(0));
    // Every delivery from now on is dropped: reconciliation never looks at completed records.
    await shop.settings({ chaos: { drop_rate: 1 } });
    await shop.act(payment.id, "refund", { amount: "12.50" });
    await shop.relay({ rounds: 3 });
    await runCron();
    await eventually(() => matchesTruth(shop), { timeoutMs: 15_000, intervalMs: 200 });
  }, 90_000);

  it("walking events whose history is archived writes none of it back into D1", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const payments = [
      await shop.pay({ card: "4242424242424242", amount: "8.00", currency: "EUR" }),
      await shop.pay({ card: "4000000000000002", amount: "9.00", currency: "EUR" }),
      // In flight (awaiting a manual capture): its events are archived, its operations stay in D1.
      await shop.pay({ card: "4242424242424242", amount: "7.00", currency: "EUR", capture: "manual" }),
    ];
    await shop.relay({ rounds: 5 });
    const truth = await eventually(() => matchesTruth(shop), { timeoutMs: 15_000 });
    const before = await Promise.all(payments.map((payment) => historyAnswers(shop.merchant.api_key, payment.id)));
    await archiveAll(merchantId);
    const kept = { events: 0, operations: before[2]?.operations.operations.length };
    expect(kept.operations).toBeGreaterThan(0);
    expect(await rowsInD1(merchantId)).toEqual(kept);
    // A walk far behind the log (here: its first, from registration) lists every event again.
    await shardedDb.prepare("DELETE FROM event_log_cursors WHERE merchant_id = ?").bind(merchantId).run();
    await runCron();
    await eventually(async () => expect((await cursorOf(merchantId))?.watermark_event_id).toBe(truth.events.at(-1)?.id));
    expect(await rowsInD1(merchantId)).toEqual(kept);
    expect(await Promise.all(payments.map((payment) => historyAnswers(shop.merchant.api_key, payment.id)))).toEqual(before);
    await matchesTruth(shop);
  }, 90_000);

  it("is fair: one merchant's backlog does not hold up another's walk", async () => {
    const busy = await openShop({ unlimited: true, webhooks: false });
    const quiet = await openShop({ unlimited: true, webhooks: false });
    // Scripted events are cheap: a backlog over one walk's 1,000 events for the busy merchant.
    for (let i = 0; i < 1_100; i++) {
      await busy.script({
        name: "customer.updated",
        transaction: {
          id: `tr_noise${i}`,
          project_id: busy.projectId,
          status: "waiting",
          amount: "1",
          currency: "EUR",
          created_at: new Date().toISOString(),
          operations: [],
        },
      });
    }
    const payment = await quiet.pay({ card: "4242424242424242", amount: "8.00", currency: "EUR" });
    await runCron();
    // The shared test database holds every other test's merchants too: each gets its walk in the same run.
    await eventually(
      async () => {
        const row = await shardedDb
          .prepare("SELECT status FROM transactions WHERE merchant_id = ? AND id = ?")
          .bind(quiet.merchant.merchant.id, payment.id)
          .first<{ status: string }>();
        expect(row?.status).toBe("completed");
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    // The busy one walked one run's share and goes on next run.
    const after = await eventually(
      async () => {
        const row = await cursorOf(busy.merchant.merchant.id);
        expect(row?.events_walked).toBe(1_000);
        return row;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    await runCron();
    await eventually(async () => expect((await cursorOf(busy.merchant.merchant.id))?.events_walked).toBe(1_100), {
      timeoutMs: 30_000,
      intervalMs: 200,
    });
    expect(after?.api_calls).toBeLessThanOrEqual(11);
  }, 120_000);

  it("stops a merchant whose key Smart Router refuses, fails its batches, and resumes when the key is PATCHed", async () => {
    const shop = await openShop({ unlimited: true, webhooks: false });
    const merchantId = shop.merchant.merchant.id;
    const rotated = `sk_${crypto.randomUUID()}`;
    await shop.settings({ secret_key: rotated });
    const started = await call("/v1/batches", {
      method: "POST",
      headers: { authorization: `Bearer ${shop.merchant.api_key}`, "content-type": "application/json" },
      body: JSON.stringify({ kind: "sync", created_after: "2026-01-01T00:00:00Z", created_before: "2026-02-01T00:00:00Z" }),
    });
    const { batch } = (await started.json()) as { batch: { id: string } };
    const failed = await eventually(async () => {
      const response = await call(`/v1/batches/${batch.id}`, { headers: { authorization: `Bearer ${shop.merchant.api_key}` } });
      const body = (await response.json()) as { batch: { status: string; error?: string } };
      expect(body.batch.status).toBe("failed");
      return body.batch;
    });
    expect(failed.error).toMatch(/refused the merchant's key.*401/);
    const shown = (await (await call(`/admin/merchants/${merchantId}`, { headers: ADMIN })).json()) as {
      merchant: { smart_router_key_refused: { at: string; detail: string } | null };
    };
    expect(shown.merchant.smart_router_key_refused?.detail).toMatch(/401/);
    // While refused, the cron walks nothing for it.
    const before = await cursorOf(merchantId);
    await runCron();
    expect((await cursorOf(merchantId))?.api_calls).toBe(before?.api_calls);

    // A wrong key is refused at the PATCH (one probe call), the right one clears the mark.
    const wrong = await call(`/admin/merchants/${merchantId}`, {
      method: "PATCH",
      headers: ADMIN,
      body: JSON.stringify({ smart_router: { secret_key: "sk_still_wrong" } }),
    });
    expect(wrong.status).toBe(422);
    expect(((await wrong.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: "credentials_refused",
      message: expect.stringMatching(/401/),
    });
    const fixed = await call(`/admin/merchants/${merchantId}`, {
      method: "PATCH",
      headers: ADMIN,
      body: JSON.stringify({ smart_router: { secret_key: rotated } }),
    });
    expect(fixed.status).toBe(200);
    expect(((await fixed.json()) as { merchant: { smart_router_key_refused: unknown } }).merchant.smart_router_key_refused).toBeNull();
    const payment = await shop.pay({ card: "4242424242424242", amount: "3.00", currency: "EUR" });
    await runCron();
    await eventually(async () => {
      const row = await shardedDb
        .prepare("SELECT status FROM transactions WHERE merchant_id = ? AND id = ?")
        .bind(merchantId, payment.id)
        .first<{ status: string }>();
      expect(row?.status).toBe("completed");
    });
  }, 90_000);
});

describe("webhook dead letters after an outage", () => {
  it("are redriven by themselves once Smart Router answers the merchant again", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    await shop.settings({ chaos: { api_5xx_rate: 1 } });
    const payment = await shop.pay({ card: "4242424242424242", amount: "9.00", currency: "EUR" });
    await shop.relay({ rounds: 5 });
    // Past the verification horizon (3 days, scaled to seconds in tests) the deliveries are dead letters.
    const letters = await eventually(
      async () => {
        const body = (await (await call(`/admin/dead-letters?merchant=${merchantId}`, { headers: ADMIN })).json()) as {
          dead_letters: { error: string }[];
        };
        expect(body.dead_letters.length).toBe((await shop.truth()).events.length);
        return body.dead_letters;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(letters[0]?.error).toMatch(/^verification gave up after \d+ tries/);
    await shop.settings({ chaos: { api_5xx_rate: 0 } });
    await runCron();
    await eventually(
      async () => {
        const body = (await (await call(`/admin/dead-letters?merchant=${merchantId}`, { headers: ADMIN })).json()) as {
          dead_letters: unknown[];
        };
        expect(body.dead_letters).toEqual([]);
        await matchesTruth(shop);
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    const row = await shardedDb
      .prepare("SELECT status FROM transactions WHERE merchant_id = ? AND id = ?")
      .bind(merchantId, payment.id)
      .first<{ status: string }>();
    expect(row?.status).toBe("completed");
  }, 120_000);
});
