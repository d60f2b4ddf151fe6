import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { operations } from "../../../src/db/schema";
import { createMerchant } from "../../support/fixtures";
import { shardedDb } from "../../support/shards";
import { seedEvent, seedOperation, seedTransaction } from "../../support/status-api";
import { archiveAll, type Failure, FUTURE_CUTOFF, failingBucket, historyAnswers, rowsInD1 } from "./support";

// Each run stores a merchant's histories and archives them several times: far fewer runs than the consumer properties.
const RUNS = Math.min(15, Number(env.PROPERTY_RUNS ?? 15));
const DAY_MS = 86_400_000;
const BASE = Date.parse("2026-01-01T00:00:00.000Z");
const at = (ms: number) => new Date(BASE + ms).toISOString();

const history = fc.record({
  status: fc.constantFrom("completed", "refunded", "failed", "voided", "partially-refunded", "authorized", "pending", "in-review"),
  /** The day of its last change, and a millisecond within it (ties between transactions included). */
  day: fc.nat({ max: 4 }),
  tick: fc.nat({ max: 3 }),
  events: fc.nat({ max: 4 }),
  operations: fc.nat({ max: 5 }),
  /** Two events fired at the same instant, or one with no fired_at at all. */
  firedTie: fc.boolean(),
  unfired: fc.boolean(),
});

const pass = fc.record({
  /** Days after BASE: the archive takes what changed before it. */
  cutoffDay: fc.nat({ max: 6 }),
  failure: fc.constantFrom<Failure | "none">("none", "none", "put refused", "dies after put", "head fails"),
  /**
   * Transactions that change after this pass (a refund: new rows, the old operations written again), with an event that
   * may have fired before every archived one (delivered late, or found by the backstop).
   */
  changes: fc.array(fc.record({ index: fc.nat({ max: 7 }), firedEarly: fc.boolean() }), { maxLength: 3 }),
});

describe("retention: archiving never changes what the status API answers", () => {
  it("random histories, archived at random times (some runs failing), answer the same before and after each pass", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(history, { minLength: 1, maxLength: 8 }),
        fc.array(pass, { minLength: 1, maxLength: 4 }),
        async (histories, passes) => {
          const merchant = await createMerchant();
          const merchantId = merchant.merchant.id;
          const seeded: { id: string; status: string; operations: (typeof operations.$inferInsert)[] }[] = [];
          for (const [i, h] of histories.entries()) {
            const transaction = await seedTransaction(merchantId, { status: h.status, updatedAt: at(h.day * DAY_MS + h.tick) });
            const firedAt = (e: number) => (h.unfired && e === 0 ? null : at(i * 60_000 + (h.firedTie ? Math.min(e, 1) : e) * 1000));
            for (let e = 0; e < h.events; e++) await seedEvent({ merchantId, transactionId: transaction.id, firedAt: firedAt(e) });
            const ops = [];
            for (let o = 0; o < h.operations; o++) {
              ops.push(await seedOperation({ merchantId, transactionId: transaction.id, createdAt: at(i * 60_000 + o * 1000) }));
            }
            seeded.push({ id: transaction.id, status: h.status, operations: ops });
          }
          const answers = () => Promise.all(seeded.map((t) => historyAnswers(merchant.api_key, t.id)));

          const cutoffs = passes.map((p) => p.cutoffDay).sort((a, b) => a - b);
          for (const [k, p] of passes.entries()) {
            const before = await answers();
            const bucket = p.failure === "none" ? env.ARCHIVE : failingBucket(p.failure);
            await archiveAll(merchantId, { bucket, cutoff: at((cutoffs[k] ?? 0) * DAY_MS) }).catch((error: unknown) => {
              if (p.failure === "none") throw error;
            });
            expect(await answers()).toEqual(before);

            for (const { index, firedEarly } of p.changes) {
              const changed = seeded[index % seeded.length];
              if (!changed) continue;
              await seedEvent({ merchantId, transactionId: changed.id, firedAt: firedEarly ? at(-DAY_MS + k) : at(10 * DAY_MS + k) });
              changed.operations.push(await seedOperation({ merchantId, transactionId: changed.id, createdAt: at(10 * DAY_MS + k) }));
              // A newer snapshot brings the whole history again: the record's history takes back the archived ones.
              for (const op of changed.operations) await seedOperation({ ...op, merchantId, transactionId: changed.id });
              await shardedDb
                .prepare("UPDATE transactions SET updated_at = ? WHERE merchant_id = ? AND id = ?")
                .bind(at(7 * DAY_MS + k), merchantId, changed.id)
                .run();
            }
          }

          // Last, everything old enough: only records in flight keep rows in D1 (their operations), and each id is answered once.
          const before = await answers();
          await archiveAll(merchantId, { cutoff: FUTURE_CUTOFF });
          const after = await answers();
          expect(after).toEqual(before);
          for (const { events, operations: ops } of after) {
            expect(new Set(events.events.map((e) => e.id)).size).toBe(events.events.length);
            expect(new Set(ops.operations.map((o) => o.id)).size).toBe(ops.operations.length);
          }
          const inFlight = new Set(["authorized", "pending", "in-review"]);
          const held = seeded.filter((t) => inFlight.has(t.status)).map((t) => after[seeded.indexOf(t)]);
          expect(await rowsInD1(merchantId)).toEqual({
            events: 0,
            operations: held.reduce((sum, a) => sum + (a?.operations.operations.length ?? 0), 0),
          });
        },
      ),
      { numRuns: RUNS },
    );
  }, 300_000);
});
