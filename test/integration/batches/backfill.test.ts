import { describe, expect, it } from "vitest";
import { ADMIN, call } from "../../support/fixtures";
import { eventually, openShop, SANDBOX, sinkUrl } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";

const byId = (a: { transaction_id: string }, b: { transaction_id: string }) => (a.transaction_id < b.transaction_id ? -1 : 1);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("backfills do not ship old orders", () => {
  it("a sync that imports captures made before the fulfillment URL was set notifies only for the later ones", async () => {
    const shop = await openShop({ webhooks: false, unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const from = new Date(Date.now() - 60_000).toISOString();
    const old: string[] = [];
    for (let i = 0; i < 3; i++) old.push((await shop.pay({ card: "4242424242424242", amount: "5.00", currency: "EUR" })).id);
    // Node's clock (the emulator's captured_at) and workerd's (the URL's set time) may read the same millisecond.
    await pause(10);
    const patched = await call(`/admin/merchants/${merchantId}`, {
      method: "PATCH",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ fulfillment_url: sinkUrl(shop.projectId) }),
    });
    expect(patched.status).toBe(200);
    await pause(10);
    const fresh = (await shop.pay({ card: "4242424242424242", amount: "6.00", currency: "EUR" })).id;
    const declined = (await shop.pay({ card: "4000000000000002", amount: "7.00", currency: "EUR" })).id;

    const started = await call("/v1/batches", {
      method: "POST",
      headers: { authorization: `Bearer ${shop.merchant.api_key}`, "content-type": "application/json" },
      body: JSON.stringify({ kind: "sync", created_after: from, created_before: new Date(Date.now() + 60_000).toISOString() }),
    });
    expect(started.status).toBe(202);
    await eventually(
      async () => {
        const rows = await shardedDb
          .prepare("SELECT transaction_id, status FROM fulfillments WHERE merchant_id = ? ORDER BY transaction_id")
          .bind(merchantId)
          .all<{ transaction_id: string; status: string }>();
        expect(rows.results).toEqual(
          [
            ...old.map((id) => ({ transaction_id: id, status: "backfilled" })),
            { transaction_id: fresh, status: expect.stringMatching(/pending|delivered/) },
          ].sort(byId),
        );
      },
      { timeoutMs: 20_000 },
    );
    const sink = await eventually(async () => {
      const body = (await (await fetch(`${SANDBOX}/_sandbox/sink/${shop.projectId}`)).json()) as {
        requests: { json: { data: { transaction: { id: string } } } }[];
      };
      expect(body.requests.length).toBe(1);
      return body.requests;
    });
    expect(sink[0]?.json.data.transaction.id).toBe(fresh);
    const stored = await shardedDb
      .prepare("SELECT count(*) AS n FROM transactions WHERE merchant_id = ? AND id = ?")
      .bind(merchantId, declined)
      .first<{ n: number }>();
    expect(stored?.n).toBe(1);
  }, 40_000);
});
