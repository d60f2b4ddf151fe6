import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ReadingName, readingNames, readingPatch } from "../../../sandbox/readings";
import { consume, deliveryOf } from "../../support/consumer";
import { history, step } from "../../support/histories";
import { lifecycle, play } from "../../support/lifecycles";
import { eventually, openShop, type Shop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";
import { createEndpoint, receivedByTransaction, sinkAnswers, sinkRequests } from "./support";

// Each run waits for real retries (1 s at least), so a twentieth of the consumer's runs: 25 in CI, shared out over the
// readings so that every one of them is played (a reading drawn at random would leave some out of a short run).
const RUNS = Math.max(5, Math.floor(Number(env.PROPERTY_RUNS ?? 500) / 20));
const RUNS_PER_READING = Math.max(2, Math.ceil(RUNS / readingNames.length));
// The snapshot histories are the consumer's own property (500 runs there): here a third as many per reading, at least one.
const HISTORIES_PER_READING = Math.max(1, Math.floor(RUNS_PER_READING / 3));

interface StoredMessage {
  sequence: number;
  position: number;
  type: string;
  status: string;
}

const positionOf = (m: { sequence: number; type: string }) => m.sequence * 2 + (m.type === "transaction.captured" ? 1 : 0);

/** A shop per reading, each with a `*` endpoint on its own sink. */
async function shopsPerReading(): Promise<Map<ReadingName, { shop: Shop; sink: string }>> {
  const shops = new Map<ReadingName, { shop: Shop; sink: string }>();
  for (const name of readingNames) {
    const shop = await openShop({ unlimited: true, webhooks: false, settings: { readings: readingPatch(name) } });
    const sink = `order-${shop.projectId}`;
    await createEndpoint(shop.merchant, sink, ["*"]);
    shops.set(name, { shop, sink });
  }
  return shops;
}

/**
 * Once none of the transaction's messages is pending: they were created in lane order (changes numbered 1..n without
 * gaps, `captured` once iff fulfilled, right after its change), the stream ends on `finalStatus`, and the receiver got
 * them, failed tries included, without a step back in the lane.
 */
async function expectInOrder({
  merchantId,
  transactionId,
  sink,
  finalStatus,
}: {
  merchantId: string;
  transactionId: string;
  sink: string;
  finalStatus: string | undefined;
}) {
  const stored = await eventually(
    async () => {
      const rows = await shardedDb
        .prepare("SELECT sequence, position, type, status FROM endpoint_messages WHERE merchant_id = ? AND transaction_id = ? ORDER BY seq")
        .bind(merchantId, transactionId)
        .all<StoredMessage>();
      expect(rows.results.filter((m) => m.status === "pending")).toEqual([]);
      return rows.results;
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
  expect(stored.map((m) => m.position)).toEqual(stored.map((m) => m.position).sort((a, b) => a - b));
  const changes = stored.filter((m) => m.type !== "transaction.captured");
  expect(changes.map((m) => m.sequence)).toEqual(changes.map((_, i) => i + 1));
  const captured = stored.filter((m) => m.type === "transaction.captured");
  const fulfilment = await shardedDb
    .prepare("SELECT count(*) AS n FROM fulfillments WHERE merchant_id = ? AND transaction_id = ?")
    .bind(merchantId, transactionId)
    .first<{ n: number }>();
  expect(captured.length).toBe(fulfilment?.n ?? 0);
  expect(changes.at(-1)?.type).toBe(`transaction.${finalStatus}`);
  const lane = receivedByTransaction(await sinkRequests(sink)).get(transactionId) ?? [];
  const positions = lane.map(positionOf);
  expect(positions).toEqual([...positions].sort((a, b) => a - b));
  expect(new Set(positions).size).toBe(stored.length);
}

describe("endpoints: a transaction's messages are never out of order", () => {
  it(`under every lifecycle, delivery order and reading, with a receiver failing first tries (${RUNS_PER_READING} lifecycles × ${readingNames.length} readings)`, async () => {
    const shops = await shopsPerReading();
    const played = new Set<ReadingName>();
    for (const reading of readingNames) {
      await fc.assert(
        fc.asyncProperty(
          lifecycle.map((life) => ({ ...life, reading })),
          fc.array(fc.nat(), { minLength: 32, maxLength: 32 }),
          fc.nat({ max: 2 }),
          async (life, keys, failures) => {
            const entry = shops.get(life.reading);
            if (!entry) throw new Error(`no shop for ${life.reading}`);
            played.add(life.reading);
            const { shop, sink } = entry;
            const merchantId = shop.merchant.merchant.id;
            if (failures > 0) await sinkAnswers(sink, 503, failures);
            const transactionId = await play(shop, life);
            const truth = await shop.truth();
            const final = truth.transactions.find((t) => t.id === transactionId);
            // Every event delivered once, in an order fast-check chooses (and shrinks), one queue batch each.
            const events = truth.events.filter((e) => e.transaction_id === transactionId);
            const order = events.map((e, i) => ({ e, key: keys[i % keys.length] ?? 0 })).sort((a, b) => a.key - b.key);
            for (const { e } of order) await consume([deliveryOf(merchantId, e)]);
            // The stream ends on the record, which ends on Smart Router's truth.
            await expectInOrder({ merchantId, transactionId, sink, finalStatus: final?.status });
          },
        ),
        { numRuns: RUNS_PER_READING },
      );
    }
    expect([...played]).toEqual(readingNames);
  }, 600_000);

  it(`under any snapshot history Smart Router could send, each delivered 0–2 times in any order, under every reading (${HISTORIES_PER_READING} histories × ${readingNames.length} readings)`, async () => {
    const shops = await shopsPerReading();
    const played = new Set<ReadingName>();
    let run = 0;
    for (const reading of readingNames) {
      const entry = shops.get(reading);
      if (!entry) throw new Error(`no shop for ${reading}`);
      const { shop, sink } = entry;
      const merchantId = shop.merchant.merchant.id;
      await fc.assert(
        fc.asyncProperty(
          fc.array(step, { minLength: 1, maxLength: 8 }),
          fc.array(fc.nat({ max: 2 }), { minLength: 8, maxLength: 8 }),
          fc.array(fc.nat(), { minLength: 24, maxLength: 24 }),
          fc.integer({ min: 1, max: 3 }),
          fc.nat({ max: 2 }),
          async (steps, copies, order, batchCount, failures) => {
            played.add(reading);
            run += 1;
            const transactionId = `tr_ord${Date.now().toString(36)}${run}`;
            if (failures > 0) await sinkAnswers(sink, 503, failures);
            const events: { id: string; name: string }[] = [];
            for (const snapshot of history(transactionId, shop.projectId, steps)) events.push(await shop.script(snapshot));
            // Each event 0, 1 or 2 times (the latest at least once), in an order fast-check chooses, in 1–3 batches.
            const delivered = events.flatMap((event, i) =>
              Array.from({ length: Math.max(i === events.length - 1 ? 1 : 0, copies[i] ?? 1) }, () => event),
            );
            const messages = delivered
              .map((event, i) => ({ event, key: order[i % order.length] ?? 0 }))
              .sort((a, b) => a.key - b.key)
              .map(({ event }) => deliveryOf(merchantId, event));
            const size = Math.ceil(messages.length / batchCount);
            for (let i = 0; i < messages.length; i += size) await consume(messages.slice(i, i + size));
            // The stream ends on the record, whatever the snapshots' order.
            const record = await shardedDb
              .prepare("SELECT status FROM transactions WHERE merchant_id = ? AND id = ?")
              .bind(merchantId, transactionId)
              .first<{ status: string }>();
            await expectInOrder({ merchantId, transactionId, sink, finalStatus: record?.status });
          },
        ),
        { numRuns: HISTORIES_PER_READING },
      );
    }
    expect([...played]).toEqual(readingNames);
  }, 600_000);
});
