import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { transactionPageQuery } from "../../../src/transactions/queries";
import { MAX_REFERENCE_LENGTH } from "../../../src/transactions/references";
import { type CreatedMerchant, createMerchant } from "../../support/fixtures";
import { recordKeySeek } from "../../support/query-plan";
import { eventually, openShop, type Shop } from "../../support/sandbox";
import { dbFor } from "../../support/shards";
import { db, getJson, getWithKey, seedTransactions, transactionRow } from "../../support/status-api";

interface Listed {
  id: string;
  status: string;
  invoice_id: string | null;
  name: string | null;
  metadata: Record<string, string>;
}
interface Page {
  transactions: Listed[];
  next_cursor: string | null;
}
interface ErrorBody {
  error: { code: string; message: string; request_id: string };
}

const byReference = (reference: string, extra = "") => `/v1/transactions?reference=${encodeURIComponent(reference)}${extra}`;
const idsFound = async (apiKey: string, reference: string, extra = "") =>
  (await getJson<Page>(byReference(reference, extra), apiKey)).transactions.map((t) => t.id).sort();

/** Follows next_cursor alone (it carries the filters) to the end. */
async function walk(apiKey: string, first: string): Promise<string[]> {
  const pages = [await getJson<Page>(first, apiKey)];
  for (let cursor = pages[0]?.next_cursor; cursor; cursor = pages.at(-1)?.next_cursor) {
    pages.push(await getJson<Page>(`/v1/transactions?limit=1&cursor=${cursor}`, apiKey));
  }
  return pages.flatMap((page) => page.transactions.map((t) => t.id));
}

/** Waits until the record shows `check` (the webhooks relayed and applied). */
const untilRecord = (shop: Shop, id: string, check: (t: Listed) => boolean) =>
  eventually(
    async () => {
      await shop.relay({ rounds: 5 });
      const { transaction } = await getJson<{ transaction: Listed }>(`/v1/transactions/${id}`, shop.merchant.api_key);
      expect(check(transaction)).toBe(true);
      return transaction;
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );

describe("GET /v1/transactions?reference=: happy paths through the real pipeline", () => {
  let shop: Shop;
  let paid: Listed;

  beforeAll(async () => {
    shop = await openShop({ unlimited: true });
    const payment = await shop.pay({
      card: "4242424242424242",
      amount: "12.00",
      currency: "EUR",
      name: "Basket of Anna",
      metadata: { order_id: "ORD-1001", reference: "ref/α-7", note: "ORD-9999" },
    });
    paid = await untilRecord(shop, payment.id, (t) => t.status === "completed");
  });

  it("finds the payment by its invoice_id, its name, and its metadata order_id and reference", async () => {
    const key = shop.merchant.api_key;
    expect(paid.invoice_id).toMatch(/^iv_/);
    for (const reference of [paid.invoice_id ?? "", "Basket of Anna", "ORD-1001", "ref/α-7"]) {
      expect(await idsFound(key, reference), reference).toEqual([paid.id]);
    }
  });

  it("matches exactly and case-sensitively, and only those four fields", async () => {
    const key = shop.merchant.api_key;
    for (const reference of ["ord-1001", "ORD-100", "ORD-1001 ", "basket of anna", "ORD-9999", paid.id]) {
      expect(await idsFound(key, reference), reference).toEqual([]);
    }
  });

  it("follows a metadata edit: the old order id no longer finds the payment, the new one does", async () => {
    const key = shop.merchant.api_key;
    await shop.edit(paid.id, { metadata: { order_id: "ORD-2002" } });
    await untilRecord(shop, paid.id, (t) => t.metadata.order_id === "ORD-2002");
    expect(await idsFound(key, "ORD-2002")).toEqual([paid.id]);
    expect(await idsFound(key, "ORD-1001")).toEqual([]);
    expect(await idsFound(key, "ref/α-7")).toEqual([]);
    // What did not change still finds it.
    expect(await idsFound(key, "Basket of Anna")).toEqual([paid.id]);
  });

  it("pages with the list's keyset cursor and combines with status", async () => {
    const key = shop.merchant.api_key;
    const cards = ["4242424242424242", "4242424242424242", "4000000000000002"];
    const payments = await Promise.all(
      cards.map((card, i) => shop.pay({ card, amount: `${i + 1}.00`, currency: "EUR", name: "Shared basket" })),
    );
    for (const payment of payments) await untilRecord(shop, payment.id, (t) => t.status === "completed" || t.status === "failed");
    const walked = await walk(key, byReference("Shared basket", "&limit=1"));
    expect(walked.sort()).toEqual(payments.map((p) => p.id).sort());
    const failed = await getJson<Page>(byReference("Shared basket", "&status=failed"), key);
    expect(failed.transactions.map((t) => t.status)).toEqual(["failed"]);
    expect(failed.transactions.map((t) => t.id)).toEqual([payments[2]?.id]);
    // updated_after in the future: nothing, though the reference matches.
    expect(await idsFound(key, "Shared basket", "&updated_after=2999-01-01T00:00:00Z")).toEqual([]);
  });
});

describe("reference: the migration's backfill covers records stored before it", () => {
  it("indexes a record written without the apply (as every record before 0015 was)", async () => {
    const merchant = await createMerchant();
    const [row] = await seedTransactions([
      transactionRow(merchant.merchant.id, {
        invoiceId: "iv_old",
        name: "Old order",
        metadata: { order_id: "OLD-1", reference: 7 as unknown as string },
      }),
    ]);
    if (!row) throw new Error("no row");
    // Seeded behind the apply's back: not found until the backfill runs.
    expect(await idsFound(merchant.api_key, "OLD-1")).toEqual([]);
    const migration = env.TEST_MIGRATIONS.find((m) => m.name.startsWith("0015_"));
    const backfill = migration?.queries.find((q) => q.includes("INSERT INTO `transaction_references`"));
    if (!backfill) throw new Error("0015 has no backfill statement");
    await (await dbFor(merchant.merchant.id)).prepare(backfill).run();
    for (const reference of ["iv_old", "Old order", "OLD-1"]) {
      expect(await idsFound(merchant.api_key, reference), reference).toEqual([row.id]);
    }
    // A metadata value that is not text is not a reference.
    expect(await idsFound(merchant.api_key, "7")).toEqual([]);
  });
});

describe("reference: errors", () => {
  let merchant: CreatedMerchant;
  beforeAll(async () => {
    merchant = await createMerchant();
  });

  async function expectInvalidQuery(path: string) {
    const response = await getWithKey(path, merchant.api_key);
    expect(response.status, path).toBe(400);
    const body = (await response.json()) as ErrorBody;
    expect(body.error.code).toBe("invalid_query");
    expect(body.error.message).toContain("reference");
    expect(body.error.request_id).toBeTruthy();
  }

  it("400 for an empty, an over-long or a repeated reference", async () => {
    await expectInvalidQuery("/v1/transactions?reference=");
    await expectInvalidQuery(byReference("x".repeat(MAX_REFERENCE_LENGTH + 1)));
    // Counted in characters: 201 two-unit characters are too many, 200 are not.
    await expectInvalidQuery(byReference("𝄞".repeat(MAX_REFERENCE_LENGTH + 1)));
    await expectInvalidQuery("/v1/transactions?reference=a&reference=b");
  });

  it("accepts the longest reference, and a cursor carrying it", async () => {
    const longest = "𝄞".repeat(MAX_REFERENCE_LENGTH);
    await seedTransactions([transactionRow(merchant.merchant.id, { name: "x" }), transactionRow(merchant.merchant.id, { name: "x" })]);
    expect((await getJson<Page>(byReference(longest), merchant.api_key)).transactions).toEqual([]);
    // The longest possible cursor: a reference of JSON-escaped control characters.
    const escaped = "\u0001".repeat(MAX_REFERENCE_LENGTH);
    const page = await getJson<Page>(`/v1/transactions?limit=1`, merchant.api_key);
    expect(page.next_cursor).toBeTruthy();
    const payload = JSON.parse(atob((page.next_cursor ?? "").replaceAll("-", "+").replaceAll("_", "/"))) as Record<string, unknown>;
    const cursor = btoa(JSON.stringify({ ...payload, r: escaped }))
      .replaceAll("+", "-")
      .replaceAll("/", "_")
      .replaceAll("=", "");
    const response = await getWithKey(`/v1/transactions?cursor=${cursor}`, merchant.api_key);
    expect(response.status).toBe(200);
  });

  it("400 invalid_cursor when the query's reference differs from the cursor's", async () => {
    await seedTransactions([transactionRow(merchant.merchant.id), transactionRow(merchant.merchant.id)]);
    // A cursor of the list without a reference, followed with one: two lists mixed, refused.
    const all = await getJson<Page>("/v1/transactions?limit=1", merchant.api_key);
    expect(all.next_cursor).toBeTruthy();
    const response = await getWithKey(byReference("Other", `&cursor=${all.next_cursor}`), merchant.api_key);
    expect(response.status).toBe(400);
    const body = (await response.json()) as ErrorBody;
    expect(body.error.code).toBe("invalid_cursor");
    expect(body.error.message).toContain("reference");
  });
});

describe("reference: security", () => {
  it("never returns another merchant's payment carrying the same reference", async () => {
    const [a, b] = [await openShop({ unlimited: true }), await openShop({ unlimited: true })];
    const [paidA, paidB] = await Promise.all([
      a.pay({ card: "4242424242424242", amount: "1.00", currency: "EUR", metadata: { order_id: "SAME-1" } }),
      b.pay({ card: "4242424242424242", amount: "2.00", currency: "EUR", metadata: { order_id: "SAME-1" } }),
    ]);
    await untilRecord(a, paidA.id, (t) => t.status === "completed");
    await untilRecord(b, paidB.id, (t) => t.status === "completed");
    expect(await idsFound(a.merchant.api_key, "SAME-1")).toEqual([paidA.id]);
    expect(await idsFound(b.merchant.api_key, "SAME-1")).toEqual([paidB.id]);
    // B's invoice id, which A's payment does not carry, finds nothing for A.
    const { transaction } = await getJson<{ transaction: Listed }>(`/v1/transactions/${paidB.id}`, b.merchant.api_key);
    expect(await idsFound(a.merchant.api_key, transaction.invoice_id ?? "")).toEqual([]);
  });

  it("treats the reference as a value, never as SQL or a pattern", async () => {
    const merchant = await createMerchant();
    await seedTransactions([transactionRow(merchant.merchant.id)]);
    for (const reference of ["' OR 1=1 --", "%", "_", "*", '" OR ""="']) {
      expect(await idsFound(merchant.api_key, reference), reference).toEqual([]);
    }
  });

  it("401 without an API key", async () => {
    const response = await getWithKey(byReference("anything"), "sk_not_a_key");
    expect(response.status).toBe(401);
  });
});

describe("reference: served by indexes, rows read measured", () => {
  let merchantId: string;
  let shard: D1Database;

  beforeAll(async () => {
    // 400 records of this merchant and 100 of another; 3 carry the reference looked for.
    const [a, b] = [await createMerchant(), await createMerchant()];
    merchantId = a.merchant.id;
    shard = await dbFor(merchantId);
    const rows = await seedTransactions([
      ...Array.from({ length: 400 }, (_, i) =>
        transactionRow(a.merchant.id, { name: i % 133 === 0 ? "Needle" : `Hay ${i}`, metadata: { order_id: `O-${i}` } }),
      ),
      ...Array.from({ length: 100 }, () => transactionRow(b.merchant.id, { name: "Needle" })),
    ]);
    const migration = env.TEST_MIGRATIONS.find((m) => m.name.startsWith("0015_"));
    const backfill = migration?.queries.find((q) => q.includes("INSERT INTO `transaction_references`"));
    if (!backfill) throw new Error("0015 has no backfill statement");
    await shard.prepare(backfill).run();
    const other = await dbFor(b.merchant.id);
    if (other !== shard) await other.prepare(backfill).run();
    expect(rows.length).toBe(500);
  });

  const query = (reference: string) =>
    transactionPageQuery({ db, merchantId, filters: { reference }, limit: 51 }).toSQL() as { sql: string; params: unknown[] };

  it("seeks the references' primary key, then each record by its own: no scan of the merchant's transactions", async () => {
    const { sql, params } = query("Needle");
    const plan = (
      await shard
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .bind(...params)
        .all<{ detail: string }>()
    ).results.map((row) => row.detail);
    const text = plan.join("\n");
    expect(text).toMatch(/SEARCH transaction_references USING PRIMARY KEY \(merchant_id=\? AND reference=\?\)/);
    expect(text).toMatch(recordKeySeek());
    expect(text).not.toMatch(/^SCAN transactions/m);
  });

  it("reads a few rows per match, not the merchant's 400", async () => {
    const { sql, params } = query("Needle");
    const result = await shard
      .prepare(sql)
      .bind(...params)
      .all();
    expect(result.results.length).toBe(4);
    // 4 matches: their reference rows, their records and fulfilments, and the sort of the 4 (measured: 13). The
    // `id IN (subquery)` form the planner walked in transactions_merchant_updated order read 406.
    expect(result.meta.rows_read).toBeLessThanOrEqual(20);
  });
});
