import { describe, expect, it } from "vitest";
import { READINGS, type ReadingName, readingNames } from "../../../sandbox/readings";
import { eventually, openShop, SANDBOX, type SandboxTransaction, type Shop, TEST_CARDS } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";
import { getJson } from "../../support/status-api";

/** Every kind of payment the emulator plays: all test cards, APMs one- and two-step, a fraud review either way. */
const PAYMENTS: Record<string, unknown>[] = [
  ...TEST_CARDS.map((card) => ({ card })),
  { apm: "ideal", flow: "one-step" },
  { apm: "klarna", flow: "two-step" },
  { apm: "paypal", flow: "one-step", outcome: "failure" },
  { card: "4242424242424242", review: "approve" },
  { card: "4242424242424242", review: "block" },
];

/** The read-after-write lag long enough (× the tests' 0.001 time scale) that the first fetch-back of each event is a 404. */
const LAG = { event_read_lag_ms: 500_000 };

async function drive(shop: Shop): Promise<string[]> {
  const ids: string[] = [];
  for (const payment of PAYMENTS) ids.push((await shop.pay({ ...payment, amount: "40.00", currency: "EUR" })).id);
  // A refund on the success card and a metadata edit on it: one money step, one status-only change.
  await shop.act(ids[0] ?? "", "refund", { amount: "10.50" });
  await shop.edit(ids[0] ?? "", { metadata: { order: "A-1" } });
  return ids;
}

describe("end to end under every reading of smart-router.md's silences", () => {
  it.each(readingNames)(
    "%s: the status API equals Smart Router's truth, every capture is fulfilled once, nothing forged applied",
    async (name: ReadingName) => {
      const readings = name === "read-lag" || name === "combined" ? { ...READINGS[name], ...LAG } : READINGS[name];
      const shop = await openShop({
        fulfillment: true,
        unlimited: true,
        settings: { readings, chaos: { duplicate_rate: 0.3, max_extra_delay_ms: 20_000, forge_rate: 0.1 } },
      });
      const ids = await drive(shop);
      const apiKey = shop.merchant.api_key;

      await eventually(
        async () => {
          await shop.relay({ rounds: 3, shuffle: true });
          const truth = await shop.truth();
          expect(truth.transactions.map((t) => t.status)).not.toContain("pending");
          for (const id of ids) {
            const expected = truth.transactions.find((t: SandboxTransaction) => t.id === id);
            const { transaction } = await getJson<{ transaction: SandboxTransaction }>(`/v1/transactions/${id}`, apiKey);
            expect({ id, ...pick(transaction) }).toEqual({ id, ...pick(expected as SandboxTransaction) });
          }
        },
        { timeoutMs: 25_000, intervalMs: 100 },
      );

      const truth = await shop.truth();
      const captured = truth.transactions.filter((t) => t.captured === true).map((t) => t.id);
      const sink = await eventually(async () => {
        const body = (await (await fetch(`${SANDBOX}/_sandbox/sink/${shop.projectId}`)).json()) as {
          requests: { json: { data: { transaction: { id: string } } } }[];
        };
        expect(body.requests.length).toBe(captured.length);
        return body.requests;
      });
      expect(sink.map((r) => r.json.data.transaction.id).sort()).toEqual([...captured].sort());
      // Nothing forged applied: every transaction stored is a real one, every applied event one Smart Router fired.
      const merchantId = shop.merchant.merchant.id;
      const stored = await shardedDb.prepare("SELECT id FROM transactions WHERE merchant_id = ?").bind(merchantId).all<{ id: string }>();
      expect(stored.results.map((r) => r.id).sort()).toEqual([...ids].sort());
      const applied = await shardedDb
        .prepare("SELECT id FROM events WHERE merchant_id = ? AND outcome IN ('applied', 'stale')")
        .bind(merchantId)
        .all<{ id: string }>();
      const fired = new Set(truth.events.map((e) => e.id));
      expect(applied.results.filter((r) => !fired.has(r.id))).toEqual([]);
    },
    60_000,
  );
});

function pick(t: SandboxTransaction) {
  return {
    status: t.status,
    amount: t.amount,
    authorized_amount: t.authorized_amount,
    captured_amount: t.captured_amount,
    refunded_amount: t.refunded_amount,
    available_amount: t.available_amount,
    metadata: t.metadata,
  };
}
