import { describe, expect, it } from "vitest";
import { ADMIN, call, createMerchant } from "../../support/fixtures";
import { eventually, openShop, SANDBOX, type Shop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";
import { seedFulfillment, seedTransaction } from "../../support/status-api";
import { alertsOf, checkAlerts, checkUntil, MINUTE, only, type ShownAlert, seedAlert } from "./support";

/**
 * `fulfillment_failing` stays open while a fulfilment notification is given up for good (dead-lettered), until a
 * redrive delivers it or the merchant acknowledges it (issue 22, item 6). Played through the real pipeline: emulator
 * payments, the fulfilment consumer's retries (scaled down in tests), its dead letter, the admin redrive.
 */

const DAY = 24 * 60 * MINUTE;

const fulfilment = (merchantId: string, transactionId: string) =>
  shardedDb
    .prepare("SELECT status, failure_acknowledged_at AS acknowledged FROM fulfillments WHERE merchant_id = ? AND transaction_id = ?")
    .bind(merchantId, transactionId)
    .first<{ status: string; acknowledged: string | null }>();

const sinkAnswersAlways = (shop: Shop, status: number) =>
  fetch(`${SANDBOX}/_sandbox/sink/${shop.projectId}`, { method: "PUT", body: JSON.stringify({ status }) });

const acknowledge = (apiKey: string, alertId: string) =>
  call(`/v1/alerts/${alertId}/acknowledge`, { method: "POST", headers: { authorization: `Bearer ${apiKey}` } });

/** A captured payment whose fulfilment notification the merchant's endpoint refused until it was dead-lettered. */
async function deadLetteredPayment(shop: Shop) {
  await sinkAnswersAlways(shop, 503);
  const payment = await shop.pay({ card: "4242424242424242", amount: "15.00", currency: "EUR" });
  await shop.relay({ rounds: 10 });
  await eventually(async () => expect((await fulfilment(shop.merchant.merchant.id, payment.id))?.status).toBe("failed"), {
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  return payment.id;
}

/** The merchant's one `fulfillment_failing` alert once a run at `now` has it in `state`. */
const failingAlert = (shop: Shop, state: "open" | "resolved", now = Date.now() + 31 * MINUTE, runs = 10) =>
  checkUntil(
    shop.merchant.api_key,
    (alerts) => {
      const found = only(alerts, "fulfillment_failing");
      expect(found).toMatchObject([{ state }]);
      return found[0] as ShownAlert;
    },
    { now, runs },
  );

describe("fulfillment_failing and dead-lettered notifications", () => {
  it("opens for a dead-lettered notification, stays open over later runs, and resolves once a redrive delivers it", async () => {
    const shop = await openShop({ fulfillment: true, unlimited: true });
    await deadLetteredPayment(shop);
    const opened = await failingAlert(shop, "open");
    expect(opened.detail).toMatch(/^1 fulfilment notification\(s\) failing.*; 1 given up for good: redrive them/);
    // Days later, with nothing retrying it any more: still open. (Each run rechecks the least recently checked open
    // alerts first, and these runs stamp this one days ahead: the runs after the redrive go later still.)
    for (const days of [1, 3, 10]) await checkAlerts(Date.now() + days * DAY);
    expect(only(await alertsOf(shop.merchant.api_key), "fulfillment_failing")).toMatchObject([{ id: opened.id, state: "open" }]);

    await sinkAnswersAlways(shop, 200);
    const letters = (await (await call(`/admin/dead-letters?merchant=${shop.merchant.merchant.id}`, { headers: ADMIN })).json()) as {
      dead_letters: { id: string }[];
    };
    const redriven = await call("/admin/dead-letters/redrive", {
      method: "POST",
      headers: ADMIN,
      body: JSON.stringify({ merchant: shop.merchant.merchant.id }),
    });
    expect(redriven.status).toBe(200);
    expect(letters.dead_letters).toHaveLength(1);
    await eventually(async () => {
      const rows = await shardedDb
        .prepare("SELECT status FROM fulfillments WHERE merchant_id = ?")
        .bind(shop.merchant.merchant.id)
        .all<{ status: string }>();
      expect(rows.results).toEqual([{ status: "delivered" }]);
    });
    // Up to 30 runs: in the full suite, other files' open alerts (500 rechecked a run) come before this one.
    const resolved = await failingAlert(shop, "resolved", Date.now() + 11 * DAY, 30);
    expect(resolved).toMatchObject({ id: opened.id, acknowledged_at: null });
  }, 60_000);

  it("resolves when the merchant acknowledges it, stays resolved, and a later failure of the same notification opens a new one", async () => {
    const shop = await openShop({ fulfillment: true, unlimited: true });
    const transactionId = await deadLetteredPayment(shop);
    const opened = await failingAlert(shop, "open");

    const response = await acknowledge(shop.merchant.api_key, opened.id);
    expect(response.status).toBe(200);
    const { alert } = (await response.json()) as { alert: ShownAlert };
    expect(alert).toMatchObject({ id: opened.id, state: "resolved" });
    expect(alert.acknowledged_at).toBe(alert.resolved_at);
    expect(await fulfilment(shop.merchant.merchant.id, transactionId)).toEqual({ status: "failed", acknowledged: alert.acknowledged_at });
    // Later runs open nothing: the dead letter is acknowledged.
    await checkAlerts(Date.now() + 60 * MINUTE);
    expect(only(await alertsOf(shop.merchant.api_key), "fulfillment_failing")).toEqual([alert]);
    // Acknowledging again answers the alert unchanged.
    const again = await acknowledge(shop.merchant.api_key, opened.id);
    expect(again.status).toBe(200);
    expect(((await again.json()) as { alert: unknown }).alert).toEqual(alert);

    // Redriven while the endpoint still fails: dead-lettered again, a new failure the acknowledgement does not cover.
    await call("/admin/dead-letters/redrive", {
      method: "POST",
      headers: ADMIN,
      body: JSON.stringify({ merchant: shop.merchant.merchant.id }),
    });
    await eventually(
      async () => expect(await fulfilment(shop.merchant.merchant.id, transactionId)).toEqual({ status: "failed", acknowledged: null }),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    const shown = await checkUntil(
      shop.merchant.api_key,
      (alerts) => {
        const found = only(alerts, "fulfillment_failing");
        expect(found.map((a) => a.state).sort()).toEqual(["open", "resolved"]);
        return found;
      },
      { now: Date.now() + 31 * MINUTE },
    );
    expect(shown.find((a) => a.state === "open")?.id).not.toBe(opened.id);
    expect(shown.find((a) => a.state === "resolved")).toEqual(alert);
  }, 90_000);
});

describe("acknowledging an alert: errors and security", () => {
  it("409 for another kind or an alert that resolved by itself, 404 for an unknown id, 401 without a key", async () => {
    const merchant = await createMerchant();
    const other = await seedAlert(merchant.merchant.id, { kind: "authorized_not_captured" });
    const byItself = await seedAlert(merchant.merchant.id, {
      kind: "fulfillment_failing",
      transactionId: null,
      state: "resolved",
      resolvedAt: new Date().toISOString(),
    });
    for (const [id, status, code] of [
      [other.id, 409, "conflict"],
      [byItself.id, 409, "conflict"],
      ["al_unknown", 404, "not_found"],
    ] as const) {
      const response = await acknowledge(merchant.api_key, id);
      expect(response.status, id).toBe(status);
      const body = (await response.json()) as { error: { code: string; request_id: string } };
      expect(body.error.code).toBe(code);
      expect(body.error.request_id).toBeTruthy();
    }
    expect(only(await alertsOf(merchant.api_key), "authorized_not_captured", other.transactionId)).toMatchObject([{ state: "open" }]);
    expect((await call(`/v1/alerts/${other.id}/acknowledge`, { method: "POST" })).status).toBe(401);
  });

  it("another merchant's alert is a 404 and stays open; acknowledging marks only the merchant's own dead letters", async () => {
    const [a, b] = [await createMerchant(), await createMerchant()];
    const ofA = await seedAlert(a.merchant.id, { kind: "fulfillment_failing", transactionId: null });
    const ofB = await seedAlert(b.merchant.id, { kind: "fulfillment_failing", transactionId: null });
    const [txA, txB] = [await seedTransaction(a.merchant.id), await seedTransaction(b.merchant.id)];
    await seedFulfillment({
      merchantId: a.merchant.id,
      transactionId: txA.id,
      status: "failed",
      attempts: 12,
      lastError: "merchant answered 500",
    });
    await seedFulfillment({
      merchantId: b.merchant.id,
      transactionId: txB.id,
      status: "failed",
      attempts: 12,
      lastError: "merchant answered 500",
    });

    const cross = await acknowledge(a.api_key, ofB.id);
    expect(cross.status).toBe(404);
    expect(only(await alertsOf(b.api_key), "fulfillment_failing")).toMatchObject([{ id: ofB.id, state: "open", acknowledged_at: null }]);

    expect((await acknowledge(a.api_key, ofA.id)).status).toBe(200);
    expect((await fulfilment(a.merchant.id, txA.id))?.acknowledged).not.toBeNull();
    expect(await fulfilment(b.merchant.id, txB.id)).toEqual({ status: "failed", acknowledged: null });
  });
});
