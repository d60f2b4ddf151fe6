import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ReadingName, readingNames, readingPatch } from "../../../sandbox/readings";
import { consume, deliveryOf } from "../../support/consumer";
import { lifecycle, play } from "../../support/lifecycles";
import { openShop, type Shop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";
import { expectStoredAsTruth } from "../../support/truth";

// 500 in CI; `PROPERTY_RUNS=50 npm test` for a quicker local loop (passed in as a binding by vitest.config.ts).
const RUNS = Number(env.PROPERTY_RUNS ?? 500);

describe("consumer: any order, any duplicates, same result", () => {
  it(`ends equal to Smart Router's truth and fulfils once iff captured, under every reading (${RUNS} lifecycles)`, async () => {
    // One shop per reading, so every run can pick the reading the emulator plays.
    const shops = new Map<ReadingName, Shop>();
    for (const name of readingNames) shops.set(name, await openShop({ unlimited: true, settings: { readings: readingPatch(name) } }));
    await fc.assert(
      fc.asyncProperty(
        lifecycle,
        fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
        fc.integer({ min: 1, max: 4 }),
        async (life, keys, batchCount) => {
          const shop = shops.get(life.reading);
          if (!shop) throw new Error(`no shop for ${life.reading}`);
          const merchantId = shop.merchant.merchant.id;
          const transactionId = await play(shop, life);
          const truth = await shop.truth();
          const final = truth.transactions.find((t) => t.id === transactionId);
          const events = truth.events.filter((e) => e.transaction_id === transactionId);
          expect(final).toBeDefined();

          // Every event delivered at least once, some twice, in an order and batching fast-check chooses (and shrinks).
          const key = (i: number) => keys[i % keys.length] ?? 0;
          const deliveries = events
            .flatMap((e, i) => (key(i) % 3 === 0 ? [e, e] : [e]))
            .map((e, i) => ({ e, order: key(i + 17) }))
            .sort((a, b) => a.order - b.order)
            .map(({ e }) => e);
          const messages = deliveries.map((e) => deliveryOf(merchantId, e));
          const size = Math.ceil(messages.length / batchCount);
          for (let i = 0; i < messages.length; i += size) {
            const result = await consume(messages.slice(i, i + size));
            expect(result.retryMessages).toEqual([]);
            expect(result.explicitAcks.length).toBe(messages.slice(i, i + size).length);
          }

          await expectStoredAsTruth({ db: shardedDb, merchantId, transactionId, truth });
        },
      ),
      { numRuns: RUNS },
    );
  }, 600_000);
});
