import { beforeAll, describe, expect, it } from "vitest";
import { consume, deliveryOf } from "../../support/consumer";
import { ADMIN, call, deliver } from "../../support/fixtures";
import { eventually, openShop, type Shop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";
import { checkAlerts, checkUntil, HOUR, MINUTE, only, scanCaughtUp, setAlertSettings, sinkAnswers, storedStatus } from "./support";

/**
 * Each kind raised by a situation played through the real pipeline (emulator payments, webhooks relayed to the edge,
 * the consumer's fetch-back, the cron's alert step), then resolved when the situation clears. Time-based kinds run
 * the alert step at a later `now`, as the Cron Trigger would hours later.
 */

beforeAll(async () => {
  // The refund scan starts each merchant at its newest record on its first run, and reads SCANNED_PER_MERCHANT changes of
  // SCANNED_MERCHANTS_PER_RUN merchants a run: whatever other test files changed is read before any payment below.
  await checkAlerts();
  await scanCaughtUp();
});

/** A Smart Router operation for a scripted snapshot. */
const op = (transactionId: string, n: number, type: string, amount: string) => ({
  id: `tr_op_${transactionId.slice(3)}x${n}`,
  transaction_id: transactionId,
  type,
  amount,
  currency: "EUR",
  is_attempt: n % 2 === 0,
  has_failed: false,
  created_at: "2026-11-01T10:00:00.000Z",
});

describe("each alert kind, raised and resolved", () => {
  it("authorized_not_captured: a manual-capture card payment left authorized past the threshold, resolved by its capture", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const payment = await shop.pay({ card: "4242424242424242", amount: "42.50", currency: "EUR", capture: "manual" });
    await shop.relay({ rounds: 5 });
    await storedStatus(merchantId, payment.id, "authorized");

    // An hour later nothing is due; a day and an hour later the alert is open, once however many runs find it.
    await checkAlerts(Date.now() + HOUR);
    const later = Date.now() + 25 * HOUR;
    const [opened] = await checkUntil(
      shop.merchant.api_key,
      (alerts) => {
        const found = only(alerts, "authorized_not_captured", payment.id);
        expect(found).toHaveLength(1);
        return found;
      },
      { now: later },
    );
    expect(opened).toMatchObject({
      state: "open",
      resolved_at: null,
      detail: expect.stringMatching(/EUR 42\.5 authorized 2[45] h ago and not captured/),
    });
    await checkAlerts(later);
    await checkAlerts(later + MINUTE);
    const again = await checkUntil(shop.merchant.api_key, (alerts) => only(alerts, "authorized_not_captured", payment.id), { now: later });
    expect(again.map((alert) => alert.id)).toEqual([opened?.id]);

    await shop.act(payment.id, "capture");
    await shop.relay({ rounds: 5 });
    await storedStatus(merchantId, payment.id, "completed");
    const resolved = await checkUntil(
      shop.merchant.api_key,
      (alerts) => {
        const [alert] = only(alerts, "authorized_not_captured", payment.id);
        expect(alert?.state).toBe("resolved");
        return alert;
      },
      { now: later },
    );
    expect(resolved).toMatchObject({ id: opened?.id, opened_at: opened?.opened_at, resolved_at: expect.any(String) });
  });

  it("apm_pending: an APM payment still pending past the merchant's own threshold, resolved when it completes", async () => {
    const shop = await openShop({ unlimited: true, settings: { auto_advance: false } });
    const merchantId = shop.merchant.merchant.id;
    await setAlertSettings(merchantId, { apm_pending_minutes: 10 });
    const payment = await shop.pay({ apm: "sandbox-apm", amount: "19.99", currency: "EUR" });
    await shop.relay({ rounds: 5 });
    await storedStatus(merchantId, payment.id, "pending");

    await checkAlerts(Date.now() + 5 * MINUTE);
    const later = Date.now() + 11 * MINUTE;
    const [opened] = await checkUntil(
      shop.merchant.api_key,
      (alerts) => {
        const found = only(alerts, "apm_pending", payment.id);
        expect(found).toHaveLength(1);
        return found;
      },
      { now: later },
    );
    expect(opened?.detail).toMatch(/sandbox-apm payment pending for 1[01] min \(alert after 10 min\)/);

    await shop.act(payment.id, "complete");
    await shop.relay({ rounds: 5 });
    await storedStatus(merchantId, payment.id, "completed");
    await checkUntil(
      shop.merchant.api_key,
      (alerts) => expect(only(alerts, "apm_pending", payment.id)).toMatchObject([{ state: "resolved" }]),
      {
        now: later,
      },
    );
  });

  it("refunded_more_than_captured: a snapshot refunding more than was captured, resolved by a corrected one", async () => {
    const shop = await openShop({ unlimited: true, webhooks: false });
    const merchantId = shop.merchant.merchant.id;
    const id = `tr_refund${Date.now().toString(36)}`;
    const base = { id, project_id: shop.projectId, currency: "EUR", amount: "10", created_at: "2026-11-01T10:00:00.000Z", captured: true };
    const captured = [
      op(id, 0, "authorization", "10"),
      op(id, 1, "authorization", "10"),
      op(id, 2, "capture", "10"),
      op(id, 3, "capture", "10"),
    ];
    const overRefunded = await shop.script({
      name: "transaction.refunded",
      fired_at: "2026-11-01T10:05:00.000Z",
      transaction: {
        ...base,
        status: "refunded",
        captured_amount: "10",
        refunded_amount: "12.50",
        available_amount: "0",
        operations: [...captured, op(id, 4, "refund", "12.50"), op(id, 5, "refund", "12.50")],
      },
    });
    await consume([deliveryOf(merchantId, overRefunded)]);
    await storedStatus(merchantId, id, "refunded");
    const [opened] = await checkUntil(shop.merchant.api_key, (alerts) => {
      const found = only(alerts, "refunded_more_than_captured", id);
      expect(found).toHaveLength(1);
      return found;
    });
    // Exact decimals: 12.50 - 10 is 2.50, never a float's 2.5000000001.
    expect(opened?.detail).toMatch(/EUR 12\.50 refunded but only EUR 10 captured \(EUR 2\.50 more\)/);

    const corrected = await shop.script({
      name: "transaction.refunded",
      fired_at: "2026-11-01T10:06:00.000Z",
      transaction: {
        ...base,
        status: "refunded",
        captured_amount: "12.50",
        refunded_amount: "12.50",
        available_amount: "0",
        operations: [
          ...captured,
          op(id, 4, "refund", "12.50"),
          op(id, 5, "refund", "12.50"),
          op(id, 6, "capture", "2.50"),
          op(id, 7, "capture", "2.50"),
        ],
      },
    });
    await consume([deliveryOf(merchantId, corrected)]);
    await eventually(async () => {
      const row = await shardedDb
        .prepare("SELECT captured_amount FROM transactions WHERE merchant_id = ? AND id = ?")
        .bind(merchantId, id)
        .first();
      expect(row).toEqual({ captured_amount: "12.50" });
    });
    await checkUntil(shop.merchant.api_key, (alerts) =>
      expect(only(alerts, "refunded_more_than_captured", id)).toMatchObject([{ id: opened?.id, state: "resolved" }]),
    );
  });

  it("chargeback_after_fulfillment: a dispute opened on a payment whose fulfilment was delivered, resolved when it closes", async () => {
    const shop = await openShop({ unlimited: true, fulfillment: true, settings: { auto_advance: false } });
    const merchantId = shop.merchant.merchant.id;
    const payment = await shop.pay({ card: "4000000000000069", amount: "80.00", currency: "EUR" });
    await shop.relay({ rounds: 5 });
    await storedStatus(merchantId, payment.id, "completed");
    await eventually(async () => {
      const row = await shardedDb
        .prepare("SELECT status FROM fulfillments WHERE merchant_id = ? AND transaction_id = ?")
        .bind(merchantId, payment.id)
        .first();
      expect(row).toEqual({ status: "delivered" });
    });
    await checkAlerts();

    await shop.act(payment.id, "advance");
    await shop.relay({ rounds: 5 });
    await storedStatus(merchantId, payment.id, "chargeback-initiated");
    const [opened] = await checkUntil(shop.merchant.api_key, (alerts) => {
      const found = only(alerts, "chargeback_after_fulfillment", payment.id);
      expect(found).toHaveLength(1);
      return found;
    });
    expect(opened?.detail).toMatch(/Dispute open \(chargeback-initiated\) on a EUR 80 payment whose fulfilment was notified at 20/);

    // Lost: the dispute is over, nothing left to answer.
    await shop.act(payment.id, "advance");
    await shop.relay({ rounds: 5 });
    await storedStatus(merchantId, payment.id, "reversed");
    await checkUntil(shop.merchant.api_key, (alerts) =>
      expect(only(alerts, "chargeback_after_fulfillment", payment.id)).toMatchObject([{ state: "resolved" }]),
    );
  });

  it("forged_delivery_spike: forged deliveries over the merchant's hourly threshold, resolved once the hour has passed", async () => {
    const shop = await openShop({ unlimited: true, webhooks: false });
    const merchantId = shop.merchant.merchant.id;
    await setAlertSettings(merchantId, { forged_per_hour: 3 });
    for (let i = 0; i < 3; i++) {
      const response = await deliver(shop.merchant, {
        event_id: `ev_forged${crypto.randomUUID().replaceAll("-", "")}`,
        event_type: "transaction.captured",
      });
      expect(response.status).toBe(200);
    }
    // Fetch-back answers 404 twice (FETCH_BACK_RECHECK_SECONDS apart): then each delivery is rejected and counted.
    await eventually(
      async () => {
        const row = await shardedDb
          .prepare("SELECT count(*) AS n FROM events WHERE merchant_id = ? AND outcome = 'rejected'")
          .bind(merchantId)
          .first();
        expect(row).toEqual({ n: 3 });
      },
      { timeoutMs: 20_000 },
    );
    const [opened] = await checkUntil(shop.merchant.api_key, (alerts) => {
      const found = only(alerts, "forged_delivery_spike");
      expect(found).toHaveLength(1);
      return found;
    });
    expect(opened?.detail).toMatch(/^3 webhook deliveries in the last hour named events Smart Router does not know \(alert at 3\)/);
    await checkUntil(
      shop.merchant.api_key,
      (alerts) => expect(only(alerts, "forged_delivery_spike")).toMatchObject([{ state: "resolved" }]),
      {
        now: Date.now() + HOUR + MINUTE,
      },
    );
  });

  it("smart_router_key_refused: Smart Router refusing the merchant's key, resolved when a working key is PATCHed", async () => {
    const shop = await openShop({ unlimited: true, webhooks: false });
    const merchantId = shop.merchant.merchant.id;
    const rotated = `sk_${crypto.randomUUID()}`;
    await shop.settings({ secret_key: rotated });
    const started = await call("/v1/batches", {
      method: "POST",
      headers: { authorization: `Bearer ${shop.merchant.api_key}`, "content-type": "application/json" },
      body: JSON.stringify({ kind: "sync", created_after: "2026-01-01T00:00:00Z", created_before: "2026-02-01T00:00:00Z" }),
    });
    expect(started.status).toBe(202);
    // The sync batch runs in the batch lane, which other files' work can keep busy for a while.
    await eventually(
      async () => {
        const row = await shardedDb
          .prepare("SELECT smart_router_key_refused_at AS at FROM merchants WHERE id = ?")
          .bind(merchantId)
          .first();
        expect(row?.at).toEqual(expect.any(String));
      },
      { timeoutMs: 45_000 },
    );
    const [opened] = await checkUntil(shop.merchant.api_key, (alerts) => {
      const found = only(alerts, "smart_router_key_refused");
      expect(found).toHaveLength(1);
      return found;
    });
    expect(opened?.detail).toMatch(/Smart Router refuses the merchant's secret key since 20.*401/);

    const fixed = await call(`/admin/merchants/${merchantId}`, {
      method: "PATCH",
      headers: ADMIN,
      body: JSON.stringify({ smart_router: { secret_key: rotated } }),
    });
    expect(fixed.status).toBe(200);
    await checkUntil(shop.merchant.api_key, (alerts) =>
      expect(only(alerts, "smart_router_key_refused")).toMatchObject([{ state: "resolved" }]),
    );
  }, 90_000);

  it("fulfillment_failing: notifications failing past the threshold, resolved once the merchant's endpoint answers again", async () => {
    const shop: Shop = await openShop({ unlimited: true, fulfillment: true });
    const merchantId = shop.merchant.merchant.id;
    await sinkAnswers(shop.projectId, 503);
    const payment = await shop.pay({ card: "4242424242424242", amount: "15.00", currency: "EUR" });
    await shop.relay({ rounds: 5 });
    await eventually(async () => {
      const row = await shardedDb
        .prepare("SELECT status, attempts > 0 AS tried, last_error FROM fulfillments WHERE merchant_id = ? AND transaction_id = ?")
        .bind(merchantId, payment.id)
        .first();
      expect(row).toEqual({ status: "pending", tried: 1, last_error: "merchant answered 503" });
    });
    await checkAlerts(Date.now() + 10 * MINUTE);
    const [opened] = await checkUntil(
      shop.merchant.api_key,
      (alerts) => {
        const found = only(alerts, "fulfillment_failing");
        expect(found).toHaveLength(1);
        return found;
      },
      { now: Date.now() + 31 * MINUTE },
    );
    expect(opened?.detail).toMatch(/^1 fulfilment notification\(s\) failing, the oldest for 3[01] min .*last error: merchant answered 503/);

    await sinkAnswers(shop.projectId, 200);
    await eventually(async () => {
      const row = await shardedDb
        .prepare("SELECT status FROM fulfillments WHERE merchant_id = ? AND transaction_id = ?")
        .bind(merchantId, payment.id)
        .first();
      expect(row).toEqual({ status: "delivered" });
    });
    await checkUntil(shop.merchant.api_key, (alerts) => expect(only(alerts, "fulfillment_failing")).toMatchObject([{ state: "resolved" }]));
  });
});
