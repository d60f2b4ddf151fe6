import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { RefreshMessage } from "../../../src/queue/messages";
import { archiveMerchantHistory } from "../../../src/retention/archive";
import type { ArchiveBucket } from "../../../src/retention/archive-format";
import { createMerchant, deliver } from "../../support/fixtures";
import { eventually, openShop, type Shop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";
import { dbOfMerchant, getWithKey, seedEvent, seedOperation, seedTransaction } from "../../support/status-api";
import { checkUntil, HOUR, only } from "../alerts/support";
import { eventsOfPayment, timelineOf, untilStatus } from "../console-api/support";
import {
  archiveAll,
  archivedRecords,
  expectUniqueIds,
  FUTURE_CUTOFF,
  failingBucket,
  historyAnswers,
  ledger,
  namesOf,
  rowsInD1,
} from "./support";

// A record still in flight past the cutoff (authorized awaiting a manual capture, a dispute open) keeps its operations
// in D1 (reconciliation's refresh merges the API's whole list into them), and the rest of its history goes to R2.

/** What the record holds in D1: its status history entries, its operations, its events' rows, its updated_at. */
async function recordInD1(merchantId: string, transactionId: string) {
  const row = await shardedDb
    .prepare(
      `SELECT json_array_length(status_history) AS statuses, json_array_length(operation_history) AS operations, updated_at,
         (SELECT count(*) FROM events AS e WHERE e.merchant_id = t.merchant_id AND e.transaction_id = t.id) AS events
       FROM transactions AS t WHERE merchant_id = ? AND id = ?`,
    )
    .bind(merchantId, transactionId)
    .first<{ statuses: number | null; operations: number | null; updated_at: string; events: number }>();
  if (!row) throw new Error(`no record ${transactionId}`);
  return row;
}

/** Everything a merchant reads of a payment's history: events, operations, timeline (not the record, which a refresh restamps). */
async function reads(apiKey: string, transactionId: string) {
  const { events, operations } = await historyAnswers(apiKey, transactionId);
  return { events: events.events, operations: operations.operations, timeline: await timelineOf(apiKey, transactionId) };
}

/** A manual-capture card payment left authorized, its webhooks relayed and applied: in flight. */
async function authorizedPayment(shop: Shop) {
  const payment = await shop.pay({ card: "4242424242424242", amount: "19.90", currency: "EUR", capture: "manual" });
  await shop.relay({ rounds: 10 });
  await untilStatus(shop, payment.id, "authorized");
  await everyEventApplied(shop, payment.id);
  return payment.id;
}

/** Waits until the status API lists every event the emulator fired for the payment. */
async function everyEventApplied(shop: Shop, transactionId: string) {
  const fired = (await eventsOfPayment(shop, transactionId)).length;
  expect(fired).toBeGreaterThan(0);
  await eventually(
    async () => {
      const { events } = await historyAnswers(shop.merchant.api_key, transactionId);
      expect(events.events).toHaveLength(fired);
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
}

/** Reconciliation's refresh of the records, as a run queues it (reconciliation.ts); waits until it committed. */
async function reconcile(merchantId: string, transactionIds: string[]) {
  const asOf = new Date().toISOString();
  const runId = `rec_${crypto.randomUUID().replaceAll("-", "")}`;
  const message: RefreshMessage = {
    v: 1,
    kind: "refresh",
    as_of: asOf,
    unit_id: `${runId}/${merchantId}/0`,
    batch_id: null,
    run_id: runId,
    merchant_id: merchantId,
    transaction_ids: transactionIds,
  };
  await env.BATCHES.send(message);
  await eventually(
    async () => {
      for (const id of transactionIds) {
        const row = await shardedDb
          .prepare("SELECT reconciled_at FROM transactions WHERE merchant_id = ? AND id = ?")
          .bind(merchantId, id)
          .first<{ reconciled_at: string | null }>();
        expect(row?.reconciled_at).toBe(asOf);
      }
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
}

describe("retention: a record in flight past the cutoff (happy)", () => {
  it("its events, status history and timeline go to R2, its operations stay; events, operations and timeline read the same", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const id = await authorizedPayment(shop);
    const before = await reads(shop.merchant.api_key, id);
    const held = await recordInD1(merchantId, id);
    expect(held.events).toBeGreaterThan(0);
    expect(held.statuses).toBeGreaterThan(0);
    expect(held.operations).toBe(before.operations.length);
    expect(before.timeline.some((entry) => entry.kind === "state_change")).toBe(true);

    const steps = await archiveAll(merchantId);
    expect(steps.filter((step) => step.kind === "stored")).toHaveLength(1);

    // Gone from D1: its events (with their folded deliveries and fetch-backs) and its status entries; its operations stay.
    expect(await recordInD1(merchantId, id)).toEqual({
      statuses: null,
      operations: before.operations.length,
      updated_at: held.updated_at,
      events: 0,
    });
    const [object] = await archivedRecords(merchantId);
    const kinds = new Set(object?.records.map((record) => record.record));
    expect([...kinds].sort()).toEqual(["event", "status_change"]);
    expect(object?.records.filter((record) => record.record === "event")).toHaveLength(held.events);
    expect(object?.records.filter((record) => record.record === "status_change")).toHaveLength(held.statuses ?? 0);
    expect(await namesOf(merchantId, id)).toHaveLength(1);

    expect(await reads(shop.merchant.api_key, id)).toEqual(before);
    // Nothing is left to take: the next run passes it by.
    expect(await archiveAll(merchantId)).toEqual([{ kind: "idle" }]);
  });

  it("captured later, the next run takes the rest (its operations too); reads are the earlier ones plus the new entries, from two objects", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const id = await authorizedPayment(shop);
    const before = await reads(shop.merchant.api_key, id);
    await archiveAll(merchantId);
    const [first] = (await namesOf(merchantId, id)) ?? [];

    await shop.act(id, "capture");
    await shop.relay({ rounds: 10 });
    await untilStatus(shop, id, "completed");
    await everyEventApplied(shop, id);
    const later = await reads(shop.merchant.api_key, id);
    expect(later.events.length).toBeGreaterThan(before.events.length);
    expect(later.events.slice(0, before.events.length)).toEqual(before.events);
    expect(later.operations.length).toBeGreaterThan(before.operations.length);
    expect(later.operations.slice(0, before.operations.length)).toEqual(before.operations);
    expect(later.timeline.slice(0, before.timeline.length)).toEqual(before.timeline);
    const changes = later.timeline.filter((entry) => entry.kind === "state_change");
    expect(changes.at(-1)?.detail).toMatchObject({ from: "authorized", to: "completed" });
    // The capture moved updated_at past the walk's cursor: the walk meets the record again.
    expect((await recordInD1(merchantId, id)).events).toBe(later.events.length - before.events.length);

    const steps = await archiveAll(merchantId);
    expect(steps.filter((step) => step.kind === "stored")).toHaveLength(1);
    expect(await rowsInD1(merchantId)).toEqual({ events: 0, operations: 0 });
    expect((await recordInD1(merchantId, id)).statuses).toBeNull();
    const names = await namesOf(merchantId, id);
    expect(names).toHaveLength(2);
    expect(names?.[0]).toBe(first);
    expect(await reads(shop.merchant.api_key, id)).toEqual(later);
    const records = (await archivedRecords(merchantId)).flatMap((object) => object.records);
    expectUniqueIds(records.filter((record) => record.record === "event"));
    expectUniqueIds(records.filter((record) => record.record === "operation"));
    expect((await ledger(merchantId)).map((object) => object.status)).toEqual(["stored", "stored"]);
  });

  it("reconciliation's refresh of the archived record brings back no event and no status entry, and doubles nothing", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const id = await authorizedPayment(shop);
    const before = await reads(shop.merchant.api_key, id);
    await archiveAll(merchantId);
    const archived = await recordInD1(merchantId, id);

    const versionOf = async () =>
      (
        await shardedDb
          .prepare("SELECT snapshot_version AS version FROM transactions WHERE merchant_id = ? AND id = ?")
          .bind(merchantId, id)
          .first<{ version: string }>()
      )?.version ?? "";
    const archivedVersion = await versionOf();

    // Refreshed until a read is newer than the last event (a read's time is its Date header less 1 s): a read that shows
    // nothing new only advances the record's version (transactions/records.ts touchUnchangedReads).
    await eventually(
      async () => {
        await reconcile(merchantId, [id]);
        expect((await versionOf()) > archivedVersion).toBe(true);
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    // Nothing else moved: no status entry, no event, the same operations, the same updated_at.
    expect(await recordInD1(merchantId, id)).toEqual(archived);
    expect(await reads(shop.merchant.api_key, id)).toEqual(before);

    // Its updated_at did not move, so the walk, past it, does not meet it again.
    expect(await archiveAll(merchantId)).toEqual([{ kind: "idle" }]);
    expect((await ledger(merchantId)).length).toBe(1);
    expect(await reads(shop.merchant.api_key, id)).toEqual(before);
  });

  it("an archived event delivered again is verified again and changes nothing: no status entry, each event answered once", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const id = await authorizedPayment(shop);
    const before = await reads(shop.merchant.api_key, id);
    await archiveAll(merchantId);
    const archived = await recordInD1(merchantId, id);
    const authorized = (await eventsOfPayment(shop, id)).find((event) => event.name === "transaction.authorized");
    if (!authorized) throw new Error("no authorized event");

    // Its row left D1 with the history: the inbox takes it as new and verifies it; its snapshot (or the read the
    // fetch-back took) holds what the record holds, so the record keeps its status and gains no entry.
    expect((await deliver(shop.merchant, { event_id: authorized.id, event_type: authorized.name })).status).toBe(200);
    await eventually(async () => {
      const row = await shardedDb
        .prepare("SELECT outcome FROM events WHERE merchant_id = ? AND id = ?")
        .bind(merchantId, authorized.id)
        .first<{ outcome: string }>();
      expect(["applied", "stale"]).toContain(row?.outcome);
    });
    expect(await recordInD1(merchantId, id)).toMatchObject({ statuses: null, operations: archived.operations, events: 1 });
    const after = await reads(shop.merchant.api_key, id);
    expect(after.events).toEqual(before.events);
    expect(after.operations).toEqual(before.operations);
    // The timeline shows the delivery and its fetch-back, and no status change of its own.
    const added = after.timeline.filter((entry) => !before.timeline.some((earlier) => JSON.stringify(earlier) === JSON.stringify(entry)));
    expect(added.map((entry) => entry.kind).sort()).toEqual(["delivery", "fetch_back"]);
    expect(after.timeline.filter((entry) => entry.kind === "state_change")).toEqual(
      before.timeline.filter((entry) => entry.kind === "state_change"),
    );

    // Archived again (the event's second row, when it moved the record), it is still answered once.
    await archiveAll(merchantId);
    expect(await reads(shop.merchant.api_key, id)).toEqual(after);
  });

  it("authorized_not_captured still dates the authorization from the operations left in D1", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    // Created months ago, authorized two hours ago: only the operation says so (the record's created_at would say months).
    const record = await seedTransaction(merchantId, { status: "authorized", updatedAt: "2026-02-01T10:00:00.000Z" });
    await seedOperation({
      merchantId,
      transactionId: record.id,
      type: "authorization",
      createdAt: new Date(Date.now() - 2 * HOUR).toISOString(),
    });
    await seedEvent({ merchantId, transactionId: record.id, firedAt: "2026-02-01T09:00:00.000Z" });
    await archiveAll(merchantId);
    expect(await recordInD1(merchantId, record.id)).toMatchObject({ events: 0, operations: 1 });

    const [alert] = await checkUntil(
      merchant.api_key,
      (alerts) => {
        const found = only(alerts, "authorized_not_captured", record.id);
        expect(found).toHaveLength(1);
        return found;
      },
      { now: Date.now() + 25 * HOUR },
    );
    expect(alert?.detail).toMatch(/authorized 2[67] h ago and not captured/);
  });
});

/** A seeded record in flight with 2 applied events, 2 operations and 2 status entries, last changed long ago. */
async function seededInFlight() {
  const merchant = await createMerchant();
  const merchantId = merchant.merchant.id;
  const at = "2026-02-01T10:00:00.000Z";
  const statusHistory = JSON.stringify([
    { at, to: "pending", event_id: "ev_p", event_name: "transaction.pending" },
    { at, from: "pending", to: "authorized", event_id: "ev_a", event_name: "transaction.authorized" },
  ]);
  const record = await seedTransaction(merchantId, { status: "authorized", updatedAt: at, statusHistory });
  for (let i = 0; i < 2; i++) {
    await seedEvent({ merchantId, transactionId: record.id, firedAt: `2026-02-01T09:00:0${i}.000Z` });
    await seedOperation({ merchantId, transactionId: record.id, createdAt: `2026-02-01T09:00:0${i}.000Z` });
  }
  return { merchant, merchantId, id: record.id };
}

describe("retention: a record in flight past the cutoff (errors)", () => {
  it("a run that dies between claim and finish leaves it whole; rows added after the claim stay in D1; the next run finishes once", async () => {
    const { merchant, merchantId, id } = await seededInFlight();
    const before = await reads(merchant.api_key, id);
    const step = (bucket: ArchiveBucket = env.ARCHIVE) =>
      dbOfMerchant(merchantId).then((db) => archiveMerchantHistory({ db, bucket, merchantId, cutoff: FUTURE_CUTOFF, now: Date.now() }));
    await expect(step(failingBucket("dies after put"))).rejects.toThrow(/injected/);
    expect(await recordInD1(merchantId, id)).toMatchObject({ events: 2, statuses: 2, operations: 2 });
    expect(await ledger(merchantId)).toMatchObject([{ status: "writing" }]);
    expect(await reads(merchant.api_key, id)).toEqual(before);

    // After the claim: an event and a status entry (the record's upsert appends one), neither in the manifest.
    const late = await seedEvent({ merchantId, transactionId: id, firedAt: "2026-02-01T09:30:00.000Z" });
    await shardedDb
      .prepare(
        `UPDATE transactions SET status = 'pending-capture', status_history = json_insert(status_history, '$[#]',
           json_object('at', '2026-02-01T10:30:00.000Z', 'from', 'authorized', 'to', 'pending-capture')) WHERE merchant_id = ? AND id = ?`,
      )
      .bind(merchantId, id)
      .run();

    expect(await step()).toMatchObject({ kind: "stored", transactions: 1, records: 4 });
    expect(await step()).toEqual({ kind: "idle" });
    // Exactly the manifest's rows left: the late event and the late entry stay, the operations stay.
    expect(await recordInD1(merchantId, id)).toMatchObject({ events: 1, statuses: 1, operations: 2 });
    expect(await namesOf(merchantId, id)).toHaveLength(1);
    const after = await reads(merchant.api_key, id);
    expect(after.events.map((event) => event.id)).toEqual([...before.events.map((event) => event.id), late.id]);
    expect(after.operations).toEqual(before.operations);
    const changes = after.timeline.filter((entry) => entry.kind === "state_change").map((entry) => entry.detail);
    expect(changes).toMatchObject([
      { from: null, to: "pending" },
      { from: "pending", to: "authorized" },
      { from: "authorized", to: "pending-capture" },
    ]);
    expectUniqueIds(after.events);
  });
});

describe("retention: a record in flight past the cutoff (security)", () => {
  it("another merchant's archived record is a plain 404 on its events, operations and timeline", async () => {
    const { merchantId, id } = await seededInFlight();
    await archiveAll(merchantId);
    expect(await recordInD1(merchantId, id)).toMatchObject({ events: 0, statuses: null, operations: 2 });
    const other = await createMerchant();
    for (const path of ["events", "operations", "timeline"]) {
      const response = await getWithKey(`/v1/transactions/${id}/${path}`, other.api_key);
      expect(response.status, path).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("not_found");
    }
  });
});
