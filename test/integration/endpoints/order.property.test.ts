import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ReadingName, readingNames, readingPatch } from "../../../sandbox/readings";
import { consume, deliveryOf } from "../../support/consumer";
import { lifecycle, play } from "../../support/lifecycles";
import { eventually, openShop, type Shop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";
import { createEndpoint, receivedByTransaction, sinkAnswers, sinkRequests } from "./support";

// Each run waits for real retries (1 s at least), so a twentieth of the consumer's runs: 25 in CI.
const RUNS = Math.max(5, Math.floor(Number(env.PROPERTY_RUNS ?? 500) / 20));

interface StoredMessage {
  sequence: number;
  position: number;
  type: string;
  status: string;
}

const positionOf = (m: { sequence: number; type: string }) => m.sequence * 2 + (m.type === "transaction.captured" ? 1 : 0);

describe("endpoints: a transaction's messages are never out of order", () => {
  it(`under every generated history, delivery order and reading, with a receiver failing first tries (${RUNS} lifecycles)`, async () => {
    const shops = new Map<ReadingName, { shop: Shop; sink: string }>();
    for (const name of readingNames) {
      const shop = await openShop({ unlimited: true, webhooks: false, settings: { readings: readingPatch(name) } });
      const sink = `order-${shop.projectId}`;
      await createEndpoint(shop.merchant, sink, ["*"]);
      shops.set(name, { shop, sink });
    }
    await fc.assert(
      fc.asyncProperty(
        lifecycle,
        fc.array(fc.nat(), { minLength: 32, maxLength: 32 }),
        fc.nat({ max: 2 }),
        async (life, keys, failures) => {
          const entry = shops.get(life.reading);
          if (!entry) throw new Error(`no shop for ${life.reading}`);
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

          const stored = await eventually(
            async () => {
              const rows = await shardedDb
                .prepare(
                  "SELECT sequence, position, type, status FROM endpoint_messages WHERE merchant_id = ? AND transaction_id = ? ORDER BY seq",
                )
                .bind(merchantId, transactionId)
                .all<StoredMessage>();
              expect(rows.results.filter((m) => m.status === "pending")).toEqual([]);
              return rows.results;
            },
            { timeoutMs: 20_000, intervalMs: 100 },
          );
          // Created in lane order: changes numbered 1..n without gaps, `captured` once, right after its change.
          expect(stored.map((m) => m.position)).toEqual(stored.map((m) => m.position).sort((a, b) => a - b));
          const changes = stored.filter((m) => m.type !== "transaction.captured");
          expect(changes.map((m) => m.sequence)).toEqual(changes.map((_, i) => i + 1));
          const captured = stored.filter((m) => m.type === "transaction.captured");
          const fulfilment = await shardedDb
            .prepare("SELECT count(*) AS n FROM fulfillments WHERE merchant_id = ? AND transaction_id = ?")
            .bind(merchantId, transactionId)
            .first<{ n: number }>();
          expect(captured.length).toBe(fulfilment?.n ?? 0);
          // The stream ends on the record, which ends on Smart Router's truth.
          expect(changes.at(-1)?.type).toBe(`transaction.${final?.status}`);
          // What the receiver got, failed tries included: never a step back in the lane.
          const lane = receivedByTransaction(await sinkRequests(sink)).get(transactionId) ?? [];
          const positions = lane.map(positionOf);
          expect(positions).toEqual([...positions].sort((a, b) => a - b));
          expect(new Set(positions).size).toBe(stored.length);
        },
      ),
      { numRuns: RUNS },
    );
  }, 600_000);
});
