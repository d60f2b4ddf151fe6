import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ReadingName, readingNames, readingPatch } from "../../../sandbox/readings";
import { appConfig } from "../../../src/env";
import { startMove } from "../../../src/moves/moves";
import { consume, deliveryOf } from "../../support/consumer";
import { lifecycle, play } from "../../support/lifecycles";
import { countsOn, jobOf, moveStepper, shardDb, stepQueue } from "../../support/moves";
import { eventually, openShop, type Shop } from "../../support/sandbox";
import { shardIndexOf } from "../../support/shards";
import { expectStoredAsTruth } from "../../support/truth";

// Each run moves a merchant (a few dozen steps): 8 runs by default (under a minute), fewer under a smaller PROPERTY_RUNS.
const RUNS = Math.max(1, Math.min(8, Number(env.PROPERTY_RUNS ?? 8)));
const bindingOf = (index: number) => (index === 0 ? "DB" : `DB_SHARD_${index}`);

/** The record, its operations, fulfilment and applied events on the merchant's shard equal Smart Router's truth, once each. */
async function expectTruth(shop: Shop, transactionId: string, shard: number) {
  const merchantId = shop.merchant.merchant.id;
  await expectStoredAsTruth({ db: shardDb(shard), merchantId, transactionId, truth: await shop.truth() });
}

describe("moving a merchant at any point of any history (happy)", () => {
  it(`ends equal to Smart Router's truth, applied once, the source emptied (${RUNS} histories, a move at a random point)`, async () => {
    const shops = new Map<ReadingName, Shop>();
    for (const name of readingNames) shops.set(name, await openShop({ unlimited: true, settings: { readings: readingPatch(name) } }));
    await fc.assert(
      fc.asyncProperty(
        lifecycle,
        fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
        fc.integer({ min: 1, max: 4 }),
        fc.nat(),
        // Move steps run after each batch of deliveries: a copy is ~30 steps, so the deliveries land in every phase.
        fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 5, maxLength: 5 }),
        async (life, keys, batchCount, startAt, stepsAfter) => {
          const shop = shops.get(life.reading);
          if (!shop) throw new Error(`no shop for ${life.reading}`);
          const merchantId = shop.merchant.merchant.id;
          const transactionId = await play(shop, life);
          const events = (await shop.truth()).events.filter((e) => e.transaction_id === transactionId);
          // Every event delivered at least once, some twice, in an order and batching fast-check chooses (and shrinks).
          const key = (i: number) => keys[i % keys.length] ?? 0;
          const messages = events
            .flatMap((e, i) => (key(i) % 3 === 0 ? [e, e] : [e]))
            .map((e, i) => ({ e, order: key(i + 17) }))
            .sort((a, b) => a.order - b.order)
            .map(({ e }) => deliveryOf(merchantId, e));
          const size = Math.ceil(messages.length / batchCount);
          const batches = Array.from({ length: Math.ceil(messages.length / size) }, (_, i) => messages.slice(i * size, (i + 1) * size));
          const from = (await shardIndexOf(merchantId)) ?? 0;
          const start = startAt % (batches.length + 1);
          let stepper: ReturnType<typeof moveStepper> | undefined;
          let moveId = "";
          for (const [i, batch] of batches.entries()) {
            if (i === start) {
              moveId = (await startMove({ env, config: appConfig(env), queue: stepQueue().queue, merchantId, to: bindingOf(1 - from) })).id;
              stepper = moveStepper(moveId);
            }
            const result = await consume(batch);
            // Applied, or (fenced) put back on the queue for seconds: never retried at the queue's cost, never lost.
            expect(result.retryMessages).toEqual([]);
            expect(result.explicitAcks.length).toBe(batch.length);
            await stepper?.run(stepsAfter[i] ?? 0);
          }
          if (!stepper) {
            moveId = (await startMove({ env, config: appConfig(env), queue: stepQueue().queue, merchantId, to: bindingOf(1 - from) })).id;
            stepper = moveStepper(moveId);
          }
          await stepper.finish();
          expect((await jobOf(moveId)).status).toBe("completed");
          expect(await shardIndexOf(merchantId)).toBe(1 - from);
          expect(Object.values(await countsOn(shardDb(from), merchantId)).every((n) => n === 0)).toBe(true);
          // Deliveries that met the fence come back from the queue within seconds.
          await eventually(() => expectTruth(shop, transactionId, 1 - from), { timeoutMs: 20_000 });
        },
      ),
      // No shrinking: each try is a whole move, and a shrink could outlast the timeout; the report's seed replays the failure.
      { numRuns: RUNS, endOnFailure: true },
    );
  }, 300_000);
});
