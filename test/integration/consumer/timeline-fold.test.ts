import { describe, expect, it } from "vitest";
import { runBatch } from "../../../src/db/bulk";
import { type EventRecord, recordEvents } from "../../../src/transactions/inbox";
import {
  type FetchBackRecord,
  recordDeliveries,
  recordFetchBacks,
  recordUnfoldedFetchBacks,
} from "../../../src/transactions/timeline-record";
import { inboxRecord } from "../../support/apply";
import { deliver, uniqueId } from "../../support/fixtures";
import { eventually, openShop } from "../../support/sandbox";
import { dbFor } from "../../support/shards";
import { entriesOf, eventsOfPayment, pipelineOf, timelineOf, untilStatus } from "../console-api/support";

/** The merchant's rows of the timeline tables, and the fold's columns of its inbox rows. */
async function timelineStorage(merchantId: string) {
  const db = await dbFor(merchantId);
  const all = async <Row>(sql: string) => (await db.prepare(sql).bind(merchantId).all<Row>()).results;
  return {
    deliveries: await all<{ event_id: string; delivery_id: string; duplicate: number }>(
      "SELECT event_id, delivery_id, duplicate FROM webhook_deliveries WHERE merchant_id = ?",
    ),
    fetchBacks: await all<{ event_id: string; outcome: string }>(
      "SELECT event_id, outcome FROM fetch_backs WHERE merchant_id = ? ORDER BY id",
    ),
    inbox: await all<{
      id: string;
      first_delivery_id: string | null;
      fetch_back_outcome: string | null;
      fetch_back_api_calls: number | null;
    }>("SELECT id, first_delivery_id, fetch_back_outcome, fetch_back_api_calls FROM events WHERE merchant_id = ?"),
  };
}

describe("the timeline fold: an event's first delivery and settling fetch-back live in its inbox row (0024)", () => {
  it("writes no delivery or fetch-back rows for a payment's webhooks, one row for a duplicate, and shows the same timeline", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const payment = await shop.pay({ card: "4242424242424242", amount: "9.00", currency: "EUR" });
    await shop.relay({ rounds: 10 });
    await untilStatus(shop, payment.id, "completed");
    const events = await eventsOfPayment(shop, payment.id);
    const [duplicated] = events;
    if (!duplicated) throw new Error("no event");
    expect((await deliver(shop.merchant, { event_id: duplicated.id, event_type: duplicated.name })).status).toBe(200);
    const timeline = await eventually(async () => {
      const shown = await timelineOf(shop.merchant.api_key, payment.id);
      expect(entriesOf(shown, "delivery").filter((entry) => entry.detail.duplicate)).toHaveLength(1);
      return shown;
    });

    const stored = await timelineStorage(merchantId);
    // Only the duplicate has a row of its own; every fetch-back settled its event, so none has one.
    expect(stored.deliveries).toEqual([{ event_id: duplicated.id, delivery_id: expect.any(String), duplicate: 1 }]);
    expect(stored.fetchBacks).toEqual([]);
    const inbox = new Map(stored.inbox.map((row) => [row.id, row]));
    for (const event of events) expect(inbox.get(event.id)?.fetch_back_outcome).toBe("verified");

    // The timeline shows each first delivery (the row's delivery id) and each fetch-back (the row's call count) as before.
    const firsts = entriesOf(timeline, "delivery").filter((entry) => !entry.detail.duplicate);
    expect(firsts.map((entry) => [entry.detail.event_id, entry.detail.delivery_id]).sort()).toEqual(
      events.map((event) => [event.id, inbox.get(event.id)?.first_delivery_id]).sort(),
    );
    const fetched = entriesOf(timeline, "fetch_back");
    expect(fetched.map((entry) => [entry.detail.event_id, entry.detail.outcome, entry.detail.api_calls]).sort()).toEqual(
      events.map((event) => [event.id, "verified", inbox.get(event.id)?.fetch_back_api_calls]).sort(),
    );
    // The pipeline counts the folded first deliveries by their event's outcome, and the duplicate row.
    const { outcomes } = await pipelineOf(shop.merchant.api_key);
    expect(outcomes.applied + outcomes.stale).toBe(events.length);
    expect(outcomes.duplicate).toBe(1);
  });
});

describe("the timeline fold when deliveries and consumers race", () => {
  const fetchBack = (merchantId: string, eventId: string, at: string, apiCalls: number): FetchBackRecord => ({
    merchantId,
    eventId,
    outcome: "verified",
    detail: null,
    trace: { via: "event", at, apiCalls, paceWaitMs: 0 },
  });
  const eventRecord = (merchantId: string, eventId: string, over: Partial<EventRecord>): EventRecord =>
    inboxRecord(merchantId, eventId, { receivedAt: "2026-03-01T10:00:00.000Z", now: "2026-03-01T10:00:01.000Z", ...over });

  it("keeps a second consumer's fetch-back as a row when the event was settled first, and a retried first delivery once", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const db = await dbFor(merchantId);
    const eventId = uniqueId("ev");
    const settle = (at: string, apiCalls: number, deliveryId: string) => {
      const record = fetchBack(merchantId, eventId, at, apiCalls);
      return runBatch(db, [
        ...recordDeliveries([{ merchantId, eventId, deliveryId, receivedAt: "2026-03-01T10:00:00.000Z" }]),
        ...recordEvents([eventRecord(merchantId, eventId, { outcome: "ignored", firstDeliveryId: deliveryId, fetchBack: record })]),
        ...recordUnfoldedFetchBacks([record]),
      ]);
    };
    // The first consumer settles the event: its delivery and fetch-back are folded, no row written.
    await settle("2026-03-01T10:00:01.000Z", 1, "d_first");
    // The queue redelivers the same message: its delivery id is the row's own, recorded once.
    await settle("2026-03-01T10:00:02.000Z", 2, "d_first");
    // Another delivery of it, fetched back by a consumer that lost the race: a duplicate row and a fetch-back row.
    await settle("2026-03-01T10:00:03.000Z", 3, "d_second");

    const stored = await timelineStorage(merchantId);
    expect(stored.inbox).toEqual([{ id: eventId, first_delivery_id: "d_first", fetch_back_outcome: "verified", fetch_back_api_calls: 1 }]);
    expect(stored.deliveries).toEqual([{ event_id: eventId, delivery_id: "d_second", duplicate: 1 }]);
    expect(stored.fetchBacks).toEqual([
      { event_id: eventId, outcome: "verified" },
      { event_id: eventId, outcome: "verified" },
    ]);
  });

  it("folds the settling fetch-back into a row left pending by a failed one, which keeps its own row", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const db = await dbFor(merchantId);
    const eventId = uniqueId("ev");
    const failed: FetchBackRecord = {
      ...fetchBack(merchantId, eventId, "2026-03-01T10:00:01.000Z", 1),
      outcome: "retry",
      detail: "network: down",
    };
    // The first batch's fetch-back failed: the row is pending with its first delivery, the failure a row of its own.
    await runBatch(db, [
      ...recordDeliveries([{ merchantId, eventId, deliveryId: "d_first", receivedAt: "2026-03-01T10:00:00.000Z" }]),
      ...recordEvents([eventRecord(merchantId, eventId, { deliveries: 0, firstDeliveryId: "d_first", detail: "down" })]),
      ...recordFetchBacks([failed]),
    ]);
    // The retried message verifies it: the settling fetch-back goes into the row.
    const verified = fetchBack(merchantId, eventId, "2026-03-01T10:00:09.000Z", 1);
    await runBatch(db, [
      ...recordDeliveries([{ merchantId, eventId, deliveryId: "d_first", receivedAt: "2026-03-01T10:00:00.000Z" }]),
      ...recordEvents([eventRecord(merchantId, eventId, { outcome: "ignored", firstDeliveryId: "d_first", fetchBack: verified })]),
      ...recordUnfoldedFetchBacks([verified]),
    ]);

    const stored = await timelineStorage(merchantId);
    expect(stored.inbox).toEqual([{ id: eventId, first_delivery_id: "d_first", fetch_back_outcome: "verified", fetch_back_api_calls: 1 }]);
    expect(stored.deliveries).toEqual([]);
    expect(stored.fetchBacks).toEqual([{ event_id: eventId, outcome: "retry" }]);
  });
});
