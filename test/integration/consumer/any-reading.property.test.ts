import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { readingPatch } from "../../../sandbox/readings";
import { consume, deliveryOf } from "../../support/consumer";
import { openShop, type Shop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";

// 500 in CI; `PROPERTY_RUNS=50 npm test` for a quicker local loop (passed in as a binding by vitest.config.ts).
const RUNS = Number(env.PROPERTY_RUNS ?? 500);

/**
 * Where a transaction can go next in Smart Router's status list (smart-router.md §3), never back onto the pre-capture
 * path once captured. Which steps append operations is left to the generator: the docs do not say.
 */
const NEXT: Record<string, readonly string[]> = {
  waiting: ["authorized", "failed", "in-review", "pending"],
  pending: ["authorized", "completed", "failed"],
  "in-review": ["authorized", "blocked"],
  authorized: ["completed", "voided", "failed", "pending-capture"],
  "pending-capture": ["completed", "failed"],
  completed: ["partially-refunded", "refunded", "chargeback-initiated", "retrieval-request", "fraud-notification"],
  "partially-refunded": ["partially-refunded", "refunded", "chargeback-initiated"],
  "retrieval-request": ["chargeback-initiated", "completed"],
  "chargeback-initiated": ["solved", "reversed"],
};
const CAPTURED = new Set([
  "completed",
  "partially-refunded",
  "refunded",
  "chargeback-initiated",
  "retrieval-request",
  "fraud-notification",
  "solved",
  "reversed",
]);
const OPERATION_FOR: Record<string, string> = {
  authorized: "authorization",
  completed: "capture",
  "partially-refunded": "refund",
  refunded: "refund",
  voided: "void",
  failed: "authorization",
  "chargeback-initiated": "chargeback",
  solved: "chargeback",
  reversed: "chargeback",
};

/** One step of a history: the next status (or the same one: a metadata or error edit), operations appended, time gap. */
const step = fc.record({
  choice: fc.nat(),
  edit: fc.boolean(),
  operations: fc.constantFrom(0, 0, 1, 2),
  gapMs: fc.integer({ min: 1, max: 600_000 }),
  micros: fc.integer({ min: 0, max: 999 }),
  /** How Smart Router writes fired_at: milliseconds, microseconds, or with a UTC offset. */
  clock: fc.constantFrom("ms", "micros", "offset"),
  fixedAmounts: fc.boolean(),
});
type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

function rfc3339(ms: number, micros: number, clock: Step["clock"]): string {
  const iso = new Date(ms).toISOString();
  if (clock === "micros") return `${iso.slice(0, -1)}${String(micros).padStart(3, "0")}Z`;
  if (clock === "offset") return `${new Date(ms + 2 * 3_600_000).toISOString().slice(0, -1)}+02:00`;
  return iso;
}

interface Scripted {
  name: string;
  fired_at: string;
  transaction: Record<string, unknown>;
}

/** A history Smart Router could write for one transaction: snapshots with append-only operations and later fired_at. */
function history(transactionId: string, projectId: string, steps: readonly Step[]): Scripted[] {
  let status = "waiting";
  let time = Date.parse("2026-11-01T10:00:00.000Z");
  const operations: Record<string, unknown>[] = [];
  const snapshots: Scripted[] = [];
  steps.forEach((s, index) => {
    const options = NEXT[status] ?? [];
    if (!s.edit && options.length > 0) status = options[s.choice % options.length] ?? status;
    time += s.gapMs;
    const firedAt = rfc3339(time, s.micros, s.clock);
    for (let k = 0; k < s.operations; k++) {
      operations.push({
        id: `tr_op_${transactionId.slice(3)}x${operations.length}`,
        transaction_id: transactionId,
        type: OPERATION_FOR[status] ?? "authorization",
        amount: s.fixedAmounts ? "40.00" : "40",
        currency: "EUR",
        is_attempt: k === 0 && s.operations === 2,
        has_failed: false,
        created_at: new Date(time).toISOString(),
      });
    }
    const captured = CAPTURED.has(status);
    const refunded = status === "refunded" ? "40" : status === "partially-refunded" ? "10.5" : "0";
    const money = (value: string) => (s.fixedAmounts && !value.includes(".") ? `${value}.00` : value);
    snapshots.push({
      name: `transaction.step${index}`,
      fired_at: firedAt,
      transaction: {
        id: transactionId,
        project_id: projectId,
        status,
        currency: "EUR",
        amount: money("40"),
        authorized_amount: money(status === "waiting" || status === "pending" || status === "in-review" ? "0" : "40"),
        captured_amount: money(captured ? "40" : "0"),
        refunded_amount: money(refunded),
        available_amount: money(captured ? (refunded === "0" ? "40" : refunded === "40" ? "0" : "29.5") : "0"),
        captured,
        metadata: { step: String(index) },
        error_code: s.edit ? `edit_${index}` : null,
        created_at: "2026-11-01T10:00:00.000Z",
        operations: [...operations],
      },
    });
  });
  return snapshots;
}

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
