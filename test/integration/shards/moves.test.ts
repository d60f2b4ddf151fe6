import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MOVED_TABLES } from "../../../src/moves/tables";
import { ADMIN, call } from "../../support/fixtures";
import { eventually, openShop, type Shop } from "../../support/sandbox";
import { SHARDS, shardIndexOf } from "../../support/shards";

const json = { "content-type": "application/json" };
const bindingOf = (index: number) => (index === 0 ? "DB" : `DB_SHARD_${index}`);

interface Move {
  id: string;
  merchant: string;
  from: string;
  to: string;
  status: string;
  rows_copied: number;
  error: string | null;
}

/** Each moved table's count of the merchant's rows on one shard. */
async function countsOn(db: D1Database, merchantId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of MOVED_TABLES) {
    const where =
      table.name === "merchants"
        ? "x.id = ?1"
        : table.name === "batch_units"
          ? "x.batch_id IN (SELECT id FROM batches WHERE merchant_id = ?1)"
          : table.name === "archive_pages"
            ? "x.scope = ?1"
            : "x.merchant_id = ?1";
    const row = await db.prepare(`SELECT count(*) AS n FROM "${table.name}" AS x WHERE ${where}`).bind(merchantId).first<{ n: number }>();
    counts[table.name] = row?.n ?? 0;
  }
  return counts;
}

const statusOf = async (shop: Shop) => {
  const response = await call("/v1/transactions?limit=100", { headers: { authorization: `Bearer ${shop.merchant.api_key}` } });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { transactions: { id: string; status: string }[] };
  return body.transactions.map((t) => `${t.id}:${t.status}`).sort();
};

const startMove = (merchantId: string, to: string, headers: Record<string, string> = ADMIN) =>
  call(`/admin/merchants/${merchantId}/move`, { method: "POST", headers: { ...headers, ...json }, body: JSON.stringify({ to }) });

const moveOf = async (id: string): Promise<Move> =>
  ((await (await call(`/admin/moves/${id}`, { headers: ADMIN })).json()) as { move: Move }).move;

async function shopWithPayments(): Promise<{ shop: Shop; from: number }> {
  const shop = await openShop({ unlimited: true, fulfillment: true });
  for (const card of ["4242424242424242", "4000000000000002", "4242424242424242"])
    await shop.pay({ card, amount: "12.00", currency: "EUR" });
  await shop.relay();
  await eventually(async () => expect((await statusOf(shop)).length).toBe(3));
  const from = await shardIndexOf(shop.merchant.merchant.id);
  if (from === undefined) throw new Error("merchant in no shard");
  return { shop, from };
}

describe("moving a merchant between shards (happy)", () => {
  it("copies every row, switches, empties the source; deliveries during the move are applied once", async () => {
    const { shop, from } = await shopWithPayments();
    const merchantId = shop.merchant.merchant.id;
    const to = 1 - from;
    const before = await countsOn(SHARDS[from] ?? env.DB, merchantId);
    const response = await startMove(merchantId, bindingOf(to));
    expect(response.status).toBe(202);
    const { move } = (await response.json()) as { move: Move };
    expect(move).toMatchObject({ merchant: merchantId, from: bindingOf(from), to: bindingOf(to), status: "copying" });
    // Traffic while it moves: a new payment and its webhooks.
    await shop.pay({ card: "4242424242424242", amount: "3.00", currency: "EUR" });
    await shop.relay();
    const done = await eventually(
      async () => {
        const now = await moveOf(move.id);
        expect(now.status).toBe("completed");
        return now;
      },
      { timeoutMs: 30_000 },
    );
    expect(done.rows_copied).toBeGreaterThan(0);
    expect(await shardIndexOf(merchantId)).toBe(to);
    const source = await countsOn(SHARDS[from] ?? env.DB, merchantId);
    expect(Object.values(source).every((n) => n === 0)).toBe(true);
    const target = await countsOn(SHARDS[to] ?? env.DB, merchantId);
    for (const [table, n] of Object.entries(before)) expect(target[table], table).toBeGreaterThanOrEqual(n);
    await shop.relay();
    const truth = await shop.truth();
    await eventually(async () => expect(await statusOf(shop)).toEqual(truth.transactions.map((t) => `${t.id}:${t.status}`).sort()));
    // One fulfilment row per captured payment, on the new shard only.
    const fulfilments = await (SHARDS[to] ?? env.DB)
      .prepare("SELECT transaction_id, count(*) AS n FROM fulfillments WHERE merchant_id = ? GROUP BY transaction_id")
      .bind(merchantId)
      .all<{ n: number }>();
    expect(fulfilments.results.every((row) => row.n === 1)).toBe(true);
    // The old shard refuses the merchant's writes for good (the fence stays).
    await expect(
      (SHARDS[from] ?? env.DB)
        .prepare("INSERT INTO parked_wakeups (merchant_id, due_at) VALUES (?, '2030-01-01T00:00:00.000Z')")
        .bind(merchantId)
        .run(),
    ).rejects.toThrow(/merchant_fenced/);
    // The status API writes on the new shard (a write the fence would refuse on the old one).
    const key = await call(`/admin/merchants/${merchantId}/api-keys`, { method: "POST", headers: ADMIN });
    expect(key.status).toBeLessThan(300);
  });
});

describe("moving a merchant between shards (errors)", () => {
  it("answers 409 for the shard it is on, 404 for an unknown merchant, 400 for an unbound shard, 409 while moving", async () => {
    const { shop, from } = await shopWithPayments();
    const merchantId = shop.merchant.merchant.id;
    expect((await startMove(merchantId, bindingOf(from))).status).toBe(409);
    expect((await startMove("no-such-merchant", "DB_SHARD_1")).status).toBe(404);
    expect((await startMove(merchantId, "DB_SHARD_7")).status).toBe(400);
    expect((await startMove(merchantId, "elsewhere")).status).toBe(400);
    const first = await startMove(merchantId, bindingOf(1 - from));
    expect(first.status).toBe(202);
    const again = await startMove(merchantId, bindingOf(1 - from));
    expect(again.status).toBe(409);
    const { move } = (await first.json()) as { move: Move };
    await eventually(async () => expect((await moveOf(move.id)).status).toBe("completed"), { timeoutMs: 30_000 });
    expect((await call("/admin/moves/mov_unknown", { headers: ADMIN })).status).toBe(404);
  });
});

describe("moving a merchant between shards (security)", () => {
  it("takes the admin token only: a merchant's key or none is a 401", async () => {
    const { shop, from } = await shopWithPayments();
    const merchantId = shop.merchant.merchant.id;
    expect((await startMove(merchantId, bindingOf(1 - from), {})).status).toBe(401);
    expect((await startMove(merchantId, bindingOf(1 - from), { authorization: `Bearer ${shop.merchant.api_key}` })).status).toBe(401);
    expect(await shardIndexOf(merchantId)).toBe(from);
  });
});
