import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../../src/db/client";
import { CLAIM_LEASE_MS, claimParked, finishResume, wakeOrphanedParking, wakeupOf } from "../../../src/ingest/parking";
import type { WebhookMessage } from "../../../src/queue/messages";
import { COALESCE_THRESHOLD } from "../../../src/smart-router/fetch-back";
import { consume, deliveryOf } from "../../support/consumer";
import { ADMIN, call } from "../../support/fixtures";
import { eventually, openShop } from "../../support/sandbox";
import { dbFor, shardedDb } from "../../support/shards";

/** A shop whose pacer grants its burst of calls, then one about every second (longer than a call waits in place). */
async function starvedShop() {
  const shop = await openShop({ webhooks: false });
  const patched = await call(`/admin/merchants/${shop.merchant.merchant.id}`, {
    method: "PATCH",
    headers: ADMIN,
    body: JSON.stringify({ rate_limits: { sandbox_rpm: 60 } }),
  });
  expect(patched.status).toBe(200);
  return shop;
}

const parkedCount = (merchantId: string) =>
  shardedDb
    .prepare("SELECT count(*) AS n FROM parked_deliveries WHERE merchant_id = ?")
    .bind(merchantId)
    .first<{ n: number }>()
    .then((row) => row?.n ?? 0);
const wakeup = (merchantId: string) =>
  shardedDb.prepare("SELECT due_at FROM parked_wakeups WHERE merchant_id = ?").bind(merchantId).first<{ due_at: string }>();
const applied = (merchantId: string) =>
  shardedDb
    .prepare("SELECT count(*) AS n FROM events WHERE merchant_id = ? AND outcome IN ('applied', 'stale', 'ignored')")
    .bind(merchantId)
    .first<{ n: number }>()
    .then((row) => row?.n ?? 0);

/**
 * Four of the shop's events after `payments` payments (fewer than the list's threshold, so each is fetched by id), after
 * four others have spent the pacer's burst: these wait.
 */
async function eventsOf(shop: Awaited<ReturnType<typeof openShop>>, payments: number) {
  for (let i = 0; i < payments; i++) await shop.pay({ card: "4242424242424242", amount: `${i + 1}.00`, currency: "EUR" });
  const events = ((await shop.truth()) as { events: { id: string; name: string }[] }).events;
  const batch = COALESCE_THRESHOLD - 1;
  expect(events.length).toBeGreaterThanOrEqual(2 * batch);
  await consume(events.slice(0, batch).map((event) => deliveryOf(shop.merchant.merchant.id, event)));
  return events.slice(batch, 2 * batch);
}

describe("parked, not cycled: deliveries waiting for their merchant's Smart Router budget", () => {
  it("parks what the pacer holds back in D1 under one wake-up, acks every message, and a wake-up applies them all", async () => {
    const shop = await starvedShop();
    const merchantId = shop.merchant.merchant.id;
    const events = await eventsOf(shop, 4);
    const result = await consume(events.map((event) => deliveryOf(merchantId, event)));
    // Every message left the queue: none retried, none cycled.
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toHaveLength(events.length);
    const parked = await parkedCount(merchantId);
    expect(parked).toBeGreaterThan(0);
    expect(await wakeup(merchantId)).not.toBeNull();

    // The budget comes back within seconds; each wake-up (delivered by the queue in production) resumes what it can.
    await eventually(
      async () => {
        await consume([wakeupOf(merchantId) as unknown as WebhookMessage]);
        expect(await applied(merchantId)).toBe(2 * events.length);
      },
      { timeoutMs: 30_000, intervalMs: 1_000 },
    );
    // The loop's end: nothing parked, so the last wake-up in flight (on the real queue) books no other.
    expect(await parkedCount(merchantId)).toBe(0);
    await eventually(async () => expect(await wakeup(merchantId)).toBeNull(), { timeoutMs: 15_000 });
  });

  it("another merchant's fresh deliveries in the same batch are applied at once", async () => {
    const starved = await starvedShop();
    const other = await openShop({ unlimited: true, webhooks: false });
    const starvedEvents = await eventsOf(starved, 4);
    const otherEvents = await eventsOf(other, 4);
    await consume([
      ...starvedEvents.map((event) => deliveryOf(starved.merchant.merchant.id, event)),
      ...otherEvents.map((event) => deliveryOf(other.merchant.merchant.id, event)),
    ]);
    expect(await applied(other.merchant.merchant.id)).toBe(2 * otherEvents.length);
    expect(await parkedCount(starved.merchant.merchant.id)).toBeGreaterThan(0);
  });

  it("a resume whose consumer died is taken again once its claim lapses; a lost wake-up is re-sent by the cron", async () => {
    const shop = await starvedShop();
    const merchantId = shop.merchant.merchant.id;
    await consume((await eventsOf(shop, 4)).map((event) => deliveryOf(merchantId, event)));
    const db = openDatabase(await dbFor(merchantId));
    const parked = await parkedCount(merchantId);
    expect(parked).toBeGreaterThan(0);
    const now = Date.now();
    // A consumer claims them and dies: nothing else can take them within the lease...
    expect(await claimParked(db, merchantId, now)).toHaveLength(parked);
    expect(await claimParked(db, merchantId, now + 1_000)).toHaveLength(0);
    // ...and its wake-up went with it: the cron finds the orphaned parking once a lease has passed, and wakes it.
    expect(await wakeup(merchantId)).toBeNull();
    expect(await wakeOrphanedParking({ db, queue: env.WEBHOOKS, now: now + 1_000 })).toBe(0);
    expect(await wakeOrphanedParking({ db, queue: env.WEBHOOKS, now: now + CLAIM_LEASE_MS + 1_000 })).toBeGreaterThanOrEqual(1);
    expect(await wakeup(merchantId)).not.toBeNull();
    const again = await claimParked(db, merchantId, now + CLAIM_LEASE_MS + 2_000);
    expect(again).toHaveLength(parked);
    // Released untouched (as a retry would be): still parked, and a next wake-up is asked for.
    for (const message of again) message.retry();
    expect(await finishResume(db, merchantId, again, now + CLAIM_LEASE_MS + 3_000)).toBe(true);
    expect(await parkedCount(merchantId)).toBe(parked);
  });
});
