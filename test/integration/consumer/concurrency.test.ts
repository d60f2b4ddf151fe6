import { describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../../../src/db/client";
import { applySnapshots } from "../../../src/transactions/apply";
import { consume, deliveryOf } from "../../support/consumer";
import { openShop, type Shop } from "../../support/sandbox";
import { dbFor, shardedDb } from "../../support/shards";
import { getJson } from "../../support/status-api";

const op = (transactionId: string, n: number, type: string) => ({
  id: `tr_op_${transactionId.slice(3)}x${n}`,
  transaction_id: transactionId,
  type,
  amount: "10",
  currency: "EUR",
  is_attempt: n % 2 === 0,
  has_failed: false,
  created_at: "2026-11-01T10:00:00.000Z",
});

/** Two snapshots of one transaction: authorized (2 operations), then completed (4). */
function snapshots(shop: Shop, transactionId: string) {
  const base = { id: transactionId, project_id: shop.projectId, currency: "EUR", amount: "10", created_at: "2026-11-01T10:00:00.000Z" };
  const authorized = {
    ...base,
    status: "authorized",
    operations: [op(transactionId, 0, "authorization"), op(transactionId, 1, "authorization")],
  };
  const completed = {
    ...base,
    status: "completed",
    captured: true,
    captured_amount: "10",
    operations: [...authorized.operations, op(transactionId, 2, "capture"), op(transactionId, 3, "capture")],
  };
  return { authorized, completed };
}

/** The D1 binding with its `batch` (an apply's one write) held until `before()` settles. */
function holdingWrites(d1: D1Database, before: () => Promise<unknown>): D1Database {
  return new Proxy(d1, {
    get(target, property) {
      if (property === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          await before();
          return target.batch(statements);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

interface Polled {
  id: string;
  status: string;
  updated_at: string;
}

/** A merchant polling the change feed as the OpenAPI description says: from the newest updated_at seen, less 1 ms. */
function changeFeed(apiKey: string) {
  let watermark = "2000-01-01T00:00:00.000Z";
  const latest = new Map<string, Polled>();
  return {
    latest,
    async poll() {
      const after = new Date(Date.parse(watermark) - 1).toISOString();
      const page = await getJson<{ transactions: Polled[] }>(`/v1/transactions?updated_after=${after}&limit=100`, apiKey);
      for (const tx of page.transactions) {
        const seen = latest.get(tx.id);
        if (!seen || tx.updated_at >= seen.updated_at) latest.set(tx.id, tx);
        if (tx.updated_at > watermark) watermark = tx.updated_at;
      }
    },
  };
}

describe("two consumers racing on the same transactions", () => {
  it("end on the newest snapshot, and a merchant polling updated_after during the race sees every change", async () => {
    // Items without data: every event is fetched by id, so the slow reads below are slow.
    const shop = await openShop({ unlimited: true, settings: { readings: { events_list_items: "no-data" } } });
    const merchantId = shop.merchant.merchant.id;
    const ids = Array.from({ length: 12 }, (_, i) => `tr_race${Date.now().toString(36)}${i}`);
    const slow = [];
    const fast = [];
    for (const id of ids) {
      const { authorized, completed } = snapshots(shop, id);
      fast.push(await shop.script({ name: "transaction.authorized", transaction: authorized, fired_at: "2026-11-01T10:00:01.000Z" }));
      // The newer snapshot's fetch-back is slow: its consumer started first but commits last.
      slow.push(
        await shop.script({
          name: "transaction.captured",
          transaction: completed,
          fired_at: "2026-11-01T10:00:02.000Z",
          read_delay_ms: 400,
        }),
      );
    }

    const feed = changeFeed(shop.merchant.api_key);
    let racing = true;
    const poller = (async () => {
      while (racing) {
        await feed.poll();
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
    })();
    const slowConsumer = consume(slow.map((event) => deliveryOf(merchantId, event)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const fastConsumer = consume(fast.map((event) => deliveryOf(merchantId, event)));
    await fastConsumer;
    const midRace = await shardedDb
      .prepare("SELECT count(*) AS n FROM transactions WHERE merchant_id = ? AND status = 'authorized'")
      .bind(merchantId)
      .first<{ n: number }>();
    // The race really happened: the fast consumer committed the older snapshots before the slow one committed anything.
    expect(midRace?.n).toBe(ids.length);
    await slowConsumer;
    racing = false;
    await poller;
    await feed.poll();

    const rows = await shardedDb.prepare("SELECT id, status FROM transactions WHERE merchant_id = ? ORDER BY id").bind(merchantId).all();
    expect(rows.results).toEqual(ids.map((id) => ({ id, status: "completed" })).sort((a, b) => a.id.localeCompare(b.id)));
    // Fails when updated_at is the consumer's start time: the slow commit is stamped before what the feed already saw.
    expect([...feed.latest.values()].map((tx) => tx.status)).toEqual(ids.map(() => "completed"));
  });

  it("records outcomes from what the compare-and-set wrote, not from the read before it", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const id = `tr_cas${Date.now().toString(36)}`;
    const { authorized, completed } = snapshots(shop, id);
    const d1 = await dbFor(merchantId);
    const now = new Date().toISOString();
    const apply = (db: Database, snapshot: typeof authorized, eventId: string, firedAt: string) =>
      applySnapshots({
        db,
        snapshots: [
          {
            merchantId,
            snapshot,
            source: { kind: "event", eventId, eventName: "transaction.x", firedAt },
            inbox: { eventId, deliveries: 1, receivedAt: now, now },
          },
        ],
        fulfillment: () => "not_configured",
        now,
      });
    // Both read "nothing stored" first (the newer one writes only once the older one is about to); the newer one commits
    // first, and the older one's write, held until then, is refused.
    const olderRead = Promise.withResolvers<void>();
    const newerApplied = apply(
      openDatabase(holdingWrites(d1, () => olderRead.promise)),
      completed,
      `ev_casnew${id.slice(6)}`,
      "2026-11-01T10:00:02.000Z",
    );
    const olderApplied = apply(
      openDatabase(
        holdingWrites(d1, () => {
          olderRead.resolve();
          return newerApplied;
        }),
      ),
      authorized,
      `ev_casold${id.slice(6)}`,
      "2026-11-01T10:00:01.000Z",
    );
    const [newer, older] = await Promise.all([newerApplied, olderApplied]);
    expect(newer).toMatchObject({ applied: 1, stale: 0, changedTransactions: 1 });
    expect(older).toMatchObject({ applied: 0, stale: 1, changedTransactions: 0 });
    const outcomes = await shardedDb.prepare("SELECT id, outcome FROM events WHERE merchant_id = ? ORDER BY id").bind(merchantId).all();
    expect(outcomes.results).toEqual([
      { id: `ev_casnew${id.slice(6)}`, outcome: "applied" },
      { id: `ev_casold${id.slice(6)}`, outcome: "stale" },
    ]);
  });
});
