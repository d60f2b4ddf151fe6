import { beforeAll, describe, expect, it } from "vitest";
import { reconciliationCandidates } from "../../../src/reconciliation/reconciliation";
import type { ListFilters, PagePosition } from "../../../src/transactions/cursor";
import { transactionPageQuery } from "../../../src/transactions/queries";
import { createMerchant } from "../../support/fixtures";
import { planLines, recordKeySeek } from "../../support/query-plan";
import { dbFor } from "../../support/shards";
import { db, seedTransactions, transactionRow } from "../../support/status-api";

/** The plan of the list endpoint's query. */
const planOf = (merchantId: string, filters: ListFilters, position?: PagePosition) =>
  planLines(transactionPageQuery({ db, merchantId, filters, position, limit: 51 }));

describe("list queries are served by the transactions indexes", () => {
  let merchantId: string;

  beforeAll(async () => {
    // Some rows for this merchant and another, so the planner has a table to choose over.
    const [a, b] = [await createMerchant(), await createMerchant()];
    merchantId = a.merchant.id;
    await seedTransactions([
      ...Array.from({ length: 40 }, (_, i) => transactionRow(a.merchant.id, { status: i % 2 ? "completed" : "failed" })),
      ...Array.from({ length: 40 }, () => transactionRow(b.merchant.id)),
    ]);
  });

  const position = { updatedAt: "2026-05-01T00:00:00.000Z", id: "tr_m" };
  const after = "2026-01-01T00:00:00.000Z";

  it.each<[string, ListFilters, PagePosition | undefined, string]>([
    ["first page", {}, undefined, "transactions_merchant_updated"],
    ["next page", {}, position, "transactions_merchant_updated"],
    ["updated_after", { updatedAfter: after }, undefined, "transactions_merchant_updated"],
    ["updated_after, next page", { updatedAfter: after }, position, "transactions_merchant_updated"],
    ["status", { status: "completed" }, undefined, "transactions_merchant_status_updated"],
    ["status, next page", { status: "completed" }, position, "transactions_merchant_status_updated"],
    ["status and updated_after", { status: "completed", updatedAfter: after }, undefined, "transactions_merchant_status_updated"],
    ["status and updated_after, next page", { status: "completed", updatedAfter: after }, position, "transactions_merchant_status_updated"],
    // With both filters the status index is named (either would serve; the choice is ours, not the planner's).
    ["status and payment_type", { status: "completed", paymentType: "card" }, undefined, "transactions_merchant_status_updated"],
  ])("%s: searches %s, no sort, no scan", async (_name, filters, at, index) => {
    const plan = await planOf(merchantId, filters, at);
    const access = plan.find((detail) => / transactions /.test(` ${detail} `) && !detail.includes("fulfillments"));
    expect(access, plan.join("\n")).toMatch(new RegExp(`^SEARCH transactions USING (COVERING )?INDEX ${index} \\(merchant_id=\\?`));
    expect(plan.join("\n")).not.toMatch(/TEMP B-TREE/);
    expect(plan.join("\n")).not.toMatch(/^SCAN/m);
    // The fulfilment comes by primary key, one lookup per row.
    expect(plan.some((detail) => /^SEARCH fulfillments USING PRIMARY KEY \(merchant_id=\? AND transaction_id=\?\)/.test(detail))).toBe(
      true,
    );
  });

  it("bounds the keyset position in the index, not after reading rows", async () => {
    const plan = await planOf(merchantId, {}, position);
    expect(plan.join("\n")).toMatch(/\(merchant_id=\? AND \(updated_at,id\)<\(\?,\?\)\)/);
  });
});

describe("reconciliation's query is served by the transactions_reconcile index", () => {
  // The query runs on each shard: planned on the one holding the rows seeded here.
  let shard: D1Database;
  beforeAll(async () => {
    // Recent rows only: older in-flight ones would be picked by the reconciliation tests' runs, which share this database.
    const merchant = await createMerchant();
    shard = await dbFor(merchant.merchant.id);
    await seedTransactions(
      Array.from({ length: 40 }, (_, i) => transactionRow(merchant.merchant.id, { status: i % 2 ? "authorized" : "completed" })),
    );
  });

  it("seeks each merchant's least recently looked at records in the index, and reads no transaction beyond them", async () => {
    const plan = await planLines(reconciliationCandidates(db, "2026-01-01T00:00:00.000Z"), shard);
    const text = plan.join("\n");
    // Per merchant: the partial index, bounded by the merchant and the cutoff, in the order the run takes them.
    expect(text).toMatch(/^SEARCH candidate USING (COVERING )?INDEX transactions_reconcile \(merchant_id=\? AND <expr><\?\)$/m);
    // The records picked are then read by primary key; transactions are never scanned.
    expect(text).toMatch(recordKeySeek());
    expect(text).not.toMatch(/^SCAN (transactions|candidate)\b/m);
    // The only sort is of the picked records (at most 100 per merchant), for the run's overall order.
    expect(plan.filter((detail) => detail.includes("TEMP B-TREE"))).toEqual(["USE TEMP B-TREE FOR ORDER BY"]);
  });
});
