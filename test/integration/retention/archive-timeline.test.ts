import { describe, expect, it } from "vitest";
import { deliver } from "../../support/fixtures";
import { eventually, openShop, type Shop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";
import { getWithKey } from "../../support/status-api";
import { entriesOf, eventsOfPayment, sinkAnswers, type Timeline, timelineOf, untilStatus } from "../console-api/support";
import { archiveAll, archivedRecords, failingBucket, historyAnswers, rowsInD1 } from "./support";

/**
 * The merchant's timeline records still in D1, per kind: rows of their table, and for deliveries and fetch-backs also
 * those folded into inbox rows (an event's first delivery and the fetch-back that settled it, 0024).
 */
async function timelineRowsInD1(merchantId: string) {
  const count = async (table: string, where = "true") =>
    (
      await shardedDb
        .prepare(`SELECT count(*) AS n FROM ${table} WHERE merchant_id = ? AND ${where}`)
        .bind(merchantId)
        .first<{ n: number }>()
    )?.n ?? 0;
  return {
    webhook_deliveries: (await count("webhook_deliveries")) + (await count("events", "first_delivery_id IS NOT NULL")),
    fetch_backs: (await count("fetch_backs")) + (await count("events", "fetch_back_at IS NOT NULL")),
    // The record's status history since 0030, and the table's rows before it.
    transaction_status_changes:
      (await count("transaction_status_changes")) +
      ((
        await shardedDb
          .prepare("SELECT coalesce(sum(json_array_length(status_history)), 0) AS n FROM transactions WHERE merchant_id = ?")
          .bind(merchantId)
          .first<{ n: number }>()
      )?.n ?? 0),
    fulfillment_attempts: await count("fulfillment_attempts"),
  };
}

/**
 * A captured card payment whose timeline has every kind: deliveries (one a duplicate), fetch-backs, status changes, a
 * failed then a delivered fulfilment attempt. Returns the timeline once complete.
 */
async function paymentWithWholeTimeline(shop: Shop): Promise<{ id: string; timeline: Timeline }> {
  await sinkAnswers(shop, 503, 1);
  const payment = await shop.pay({ card: "4242424242424242", amount: "12.00", currency: "EUR", capture: "manual" });
  await shop.relay({ rounds: 10 });
  await untilStatus(shop, payment.id, "authorized");
  const authorized = (await eventsOfPayment(shop, payment.id)).find((event) => event.name === "transaction.authorized");
  if (!authorized) throw new Error("no authorized event");
  expect((await deliver(shop.merchant, { event_id: authorized.id, event_type: authorized.name })).status).toBe(200);
  await shop.act(payment.id, "capture");
  await shop.relay({ rounds: 10 });
  const timeline = await eventually(
    async () => {
      const shown = await timelineOf(shop.merchant.api_key, payment.id);
      expect(entriesOf(shown, "fulfillment_attempt").map((entry) => entry.detail.outcome)).toEqual(["failed", "delivered"]);
      expect(entriesOf(shown, "delivery").some((entry) => entry.detail.duplicate)).toBe(true);
      return shown;
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
  return { id: payment.id, timeline };
}

describe("retention: a payment's timeline is archived with its history and read back", () => {
  it("answers the same timeline once its rows have left D1 for the history's R2 object", async () => {
    const shop = await openShop({ fulfillment: true, unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const payment = await paymentWithWholeTimeline(shop);
    const history = await historyAnswers(shop.merchant.api_key, payment.id);
    const before = await timelineRowsInD1(merchantId);
    for (const count of Object.values(before)) expect(count).toBeGreaterThan(0);

    const steps = await archiveAll(merchantId);
    expect(steps.filter((step) => step.kind === "stored")).toHaveLength(1);

    // The history and every timeline row left D1 in the object's finish; the endpoints answer as before.
    expect(await rowsInD1(merchantId)).toEqual({ events: 0, operations: 0 });
    expect(await timelineRowsInD1(merchantId)).toEqual({
      webhook_deliveries: 0,
      fetch_backs: 0,
      transaction_status_changes: 0,
      fulfillment_attempts: 0,
    });
    expect(await timelineOf(shop.merchant.api_key, payment.id)).toEqual(payment.timeline);
    expect(await historyAnswers(shop.merchant.api_key, payment.id)).toEqual(history);

    // The object holds each timeline row once, of this payment, beside its events and operations.
    const records = (await archivedRecords(merchantId)).flatMap((object) => object.records);
    const count = (kind: string) => records.filter((record) => record.record === kind).length;
    const folded = (field: "firstDeliveryId" | "fetchBackAt") =>
      records.filter((record) => record.record === "event" && record[field] !== null).length;
    expect({
      webhook_deliveries: count("delivery") + folded("firstDeliveryId"),
      fetch_backs: count("fetch_back") + folded("fetchBackAt"),
      transaction_status_changes: count("status_change"),
      fulfillment_attempts: count("fulfillment_attempt"),
    }).toEqual(before);
    expect(records.every((record) => record.merchantId === merchantId && record.transactionId === payment.id)).toBe(true);
  });

  it("keeps the timeline rows in D1 and the timeline whole when R2 refuses the object, then archives them on the next run", async () => {
    const shop = await openShop({ fulfillment: true, unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const payment = await paymentWithWholeTimeline(shop);
    const before = await timelineRowsInD1(merchantId);

    for (const failure of ["put refused", "head fails", "dies after put"] as const) {
      await expect(archiveAll(merchantId, { bucket: failingBucket(failure) })).rejects.toThrow(/injected|did not read back/);
      expect(await timelineRowsInD1(merchantId), failure).toEqual(before);
      expect(await timelineOf(shop.merchant.api_key, payment.id), failure).toEqual(payment.timeline);
    }
    // R2 is back: the object left `writing` is finished with the same rows, once.
    await archiveAll(merchantId);
    expect(Object.values(await timelineRowsInD1(merchantId))).toEqual([0, 0, 0, 0]);
    expect(await timelineOf(shop.merchant.api_key, payment.id)).toEqual(payment.timeline);
    const records = (await archivedRecords(merchantId)).flatMap((object) => object.records);
    // The failed attempt; the delivering one is recorded by the outbox row, which stays in D1 (0028).
    expect(records.filter((record) => record.record === "fulfillment_attempt")).toHaveLength(1);
  });

  it("answers another merchant's archived timeline with a plain 404, and reads nothing of it", async () => {
    const owner = await openShop({ fulfillment: true, unlimited: true });
    const other = await openShop({ unlimited: true });
    const payment = await paymentWithWholeTimeline(owner);
    await archiveAll(owner.merchant.merchant.id);

    const response = await getWithKey(`/v1/transactions/${payment.id}/timeline`, other.merchant.api_key);
    expect(response.status).toBe(404);
    const body = await response.text();
    expect(JSON.parse(body)).toMatchObject({ error: { code: "not_found" } });
    expect(body).not.toContain("fetch");
    expect(body).not.toContain(owner.merchant.merchant.id);
    // The owner still reads it whole.
    expect(await timelineOf(owner.merchant.api_key, payment.id)).toEqual(payment.timeline);
  });
});
