import { describe, expect, it } from "vitest";
import { eventually, openShop, SANDBOX } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";

async function storedTransaction(merchantId: string, id: string) {
  const row = await shardedDb
    .prepare("SELECT * FROM transactions WHERE merchant_id = ? AND id = ?")
    .bind(merchantId, id)
    .first<Record<string, unknown>>();
  if (!row) throw new Error(`transaction ${id} not stored yet`);
  return row;
}

describe("consumer: a card payment end to end", () => {
  it("verifies every event by fetch-back and ends with the emulator's truth, operations and one fulfilment", async () => {
    const shop = await openShop({ fulfillment: true });
    const payment = await shop.pay({ card: "4242424242424242", amount: "22.99", currency: "EUR" });
    await shop.relay({ rounds: 10 });
    const truth = (await shop.truth()).transactions.find((t) => t.id === payment.id);
    expect(truth?.status).toBe("completed");

    const row = await eventually(async () => {
      const stored = await storedTransaction(shop.merchant.merchant.id, payment.id);
      expect(stored.status).toBe("completed");
      return stored;
    });
    expect(row).toMatchObject({ amount: "22.99", captured_amount: truth?.captured_amount, currency: "EUR" });

    const ops = await shardedDb
      .prepare(
        "SELECT j.value ->> '$.id' AS id FROM transactions AS t, json_each(t.operation_history) AS j WHERE t.merchant_id = ? AND t.id = ?",
      )
      .bind(shop.merchant.merchant.id, payment.id)
      .all();
    expect(ops.results.length).toBe(((truth?.operations ?? []) as unknown[]).length);

    const sink = await eventually(async () => {
      const response = await fetch(`${SANDBOX}/_sandbox/sink/${shop.projectId}`);
      const body = (await response.json()) as { requests: { headers: Record<string, string>; body: string }[] };
      expect(body.requests.length).toBe(1);
      return body.requests;
    });
    expect(sink[0]?.headers["webhook-signature"]).toMatch(/^v1,/);
  });
});
