import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { readingPatch } from "../../../sandbox/readings";
import { consume, deliveryOf } from "../../support/consumer";
import { history, step } from "../../support/histories";
import { openShop, type Shop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";

// 500 in CI; `PROPERTY_RUNS=50 npm test` for a quicker local loop (passed in as a binding by vitest.config.ts).
const RUNS = Number(env.PROPERTY_RUNS ?? 500);

describe("consumer: any snapshot Smart Router could send, in any order", () => {
  it(`ends on the latest snapshot and fulfils once iff any delivered snapshot shows a capture (${RUNS} histories)`, async () => {
    // The list readings decide what fetch-back can take from a GET /events page.
    const shops: Shop[] = [];
    for (const name of ["default", "list-operations-null", "list-no-data"]) {
      shops.push(await openShop({ unlimited: true, settings: { readings: readingPatch(name) } }));
    }
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat({ max: 2 }), { minLength: 8, maxLength: 8 }),
        fc.array(fc.nat(), { minLength: 24, maxLength: 24 }),
        fc.integer({ min: 1, max: 3 }),
        fc.nat({ max: shops.length - 1 }),
        async (steps, copies, order, batchCount, shopIndex) => {
          const shop = shops[shopIndex] as Shop;
          const merchantId = shop.merchant.merchant.id;
          run += 1;
          const transactionId = `tr_gen${Date.now().toString(36)}${run}`;
          const snapshots = history(transactionId, shop.projectId, steps);
          const events: { id: string; name: string }[] = [];
          for (const snapshot of snapshots) events.push(await shop.script(snapshot));

          // Each event 0, 1 or 2 times (the latest at least once), in an order fast-check chooses.
          const delivered = events.flatMap((event, i) =>
            Array.from({ length: Math.max(i === events.length - 1 ? 1 : 0, copies[i] ?? 1) }, () => event),
          );
          const messages = delivered
            .map((event, i) => ({ event, key: order[i % order.length] ?? 0 }))
            .sort((a, b) => a.key - b.key)
            .map(({ event }) => deliveryOf(merchantId, event));
          const size = Math.ceil(messages.length / batchCount);
          for (let i = 0; i < messages.length; i += size) {
            const result = await consume(messages.slice(i, i + size));
            expect(result.retryMessages).toEqual([]);
          }

          const latest = snapshots.at(-1)?.transaction ?? {};
          const row = await shardedDb
            .prepare(
              "SELECT status, amount, captured_amount, refunded_amount, available_amount, metadata, error_code FROM transactions WHERE merchant_id = ? AND id = ?",
            )
            .bind(merchantId, transactionId)
            .first();
          expect(row).toEqual({
            status: latest.status,
            amount: latest.amount,
            captured_amount: latest.captured_amount,
            refunded_amount: latest.refunded_amount,
            available_amount: latest.available_amount,
            metadata: JSON.stringify(latest.metadata),
            error_code: latest.error_code,
          });
          const seen = new Set(delivered.map((event) => event.id));
          const captureSeen = snapshots.some((snapshot, i) => seen.has(events[i]?.id ?? "") && snapshot.transaction.captured === true);
          const fulfilments = await shardedDb
            .prepare("SELECT count(*) AS n FROM fulfillments WHERE merchant_id = ? AND transaction_id = ?")
            .bind(merchantId, transactionId)
            .first<{ n: number }>();
          expect(fulfilments?.n).toBe(captureSeen ? 1 : 0);
          const outcome = await shardedDb
            .prepare("SELECT outcome FROM events WHERE merchant_id = ? AND id = ?")
            .bind(merchantId, events.at(-1)?.id ?? "")
            .first<{ outcome: string }>();
          expect(outcome?.outcome).toBe("applied");
        },
      ),
      { numRuns: RUNS },
    );
  }, 600_000);
});
