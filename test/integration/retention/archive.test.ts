import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { objectKey } from "../../../src/retention/archive";
import { eventually, openShop, type Shop } from "../../support/sandbox";
import { getWithKey } from "../../support/status-api";
import { archiveAll, archivedRecords, expectUniqueIds, historyAnswers, ledger, rowsInD1 } from "./support";

/** Relays every webhook and waits until the service's records have the emulator's statuses. */
async function settle(shop: Shop) {
  await shop.relay({ rounds: 20 });
  await eventually(async () => {
    const { transactions } = await shop.truth();
    for (const truth of transactions) {
      const response = await getWithKey(`/v1/transactions/${truth.id}`, shop.merchant.api_key);
      expect(response.status).toBe(200);
      const { transaction } = (await response.json()) as { transaction: { status: string } };
      expect(transaction.status).toBe(truth.status);
    }
  });
}

/** Waits until the emulator's payment reaches `status` (APMs complete on a timer). */
async function reach(shop: Shop, id: string, status: string) {
  await eventually(async () => {
    const truth = (await shop.truth()).transactions.find((t) => t.id === id);
    expect(truth?.status).toBe(status);
  });
}

describe("retention: histories archived to R2, read back through the status API", () => {
  it("answers the same transaction, events and operations (oldest first) once the history has left D1", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const paid = await shop.pay({ card: "4242424242424242", amount: "22.99", currency: "EUR" });
    const refunded = await shop.pay({ card: "4242424242424242", amount: "40.00", currency: "EUR" });
    const declined = await shop.pay({ card: "4000000000000002", amount: "5.00", currency: "EUR" });
    const apm = await shop.pay({ apm: "ideal", flow: "one-step", outcome: "success", amount: "12.50", currency: "EUR" });
    const authorized = await shop.pay({ card: "4242424242424242", capture: "manual", amount: "9.99", currency: "EUR" });
    await reach(shop, apm.id, "completed");
    await shop.act(refunded.id, "refund", { amount: "15.25" });
    await settle(shop);
    const settledIds = [paid.id, refunded.id, declined.id, apm.id];

    const before = new Map(
      await Promise.all([...settledIds, authorized.id].map(async (id) => [id, await historyAnswers(shop.merchant.api_key, id)] as const)),
    );
    const heldInD1 = await rowsInD1(merchantId);
    expect(heldInD1.events).toBeGreaterThan(8);
    const eventsTag = (await getWithKey(`/v1/transactions/${refunded.id}/events`, shop.merchant.api_key)).headers.get("etag");

    const steps = await archiveAll(merchantId);
    expect(steps.filter((step) => step.kind === "stored").length).toBeGreaterThan(0);

    // Only the record in flight (authorized, awaiting a manual capture) keeps rows in D1: its operations, none of its events.
    const authorizedHistory = before.get(authorized.id);
    expect(await rowsInD1(merchantId)).toEqual({ events: 0, operations: authorizedHistory?.operations.operations.length });
    for (const [id, answers] of before) {
      expect(await historyAnswers(shop.merchant.api_key, id), id).toEqual(answers);
    }
    // The same body, so the same ETag: a merchant's cached copy stays valid.
    const unchanged = await getWithKey(`/v1/transactions/${refunded.id}/events`, shop.merchant.api_key, {
      "if-none-match": eventsTag ?? "",
    });
    expect(unchanged.status).toBe(304);

    // R2 holds each archived row once, under the merchant's prefix and the UTC day of the transactions' last change.
    const objects = await archivedRecords(merchantId);
    const records = objects.flatMap((object) => object.records);
    expect(records.every((record) => record.merchantId === merchantId)).toBe(true);
    expectUniqueIds(records.filter((record) => record.record === "event"));
    expectUniqueIds(records.filter((record) => record.record === "operation"));
    const archivedTransactions = new Set(records.map((record) => record.transactionId));
    expect([...archivedTransactions].sort()).toEqual([...settledIds, authorized.id].sort());
    const operationsOf = new Set(records.filter((record) => record.record === "operation").map((record) => record.transactionId));
    expect([...operationsOf].sort()).toEqual([...settledIds].sort());
    for (const { key } of objects)
      expect(key).toMatch(new RegExp(`^history/${merchantId}/\\d{4}-\\d{2}-\\d{2}/\\d{9}Z-tr_[^/]+\\.ndjson\\.gz$`));
    expect((await ledger(merchantId)).every((object) => object.status === "stored" && object.manifest === null)).toBe(true);
  });

  it("keeps a history whole when the transaction changes after it was archived, then archives it again, each row answered once", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const payment = await shop.pay({ card: "4242424242424242", amount: "30.00", currency: "EUR" });
    await settle(shop);
    const first = await historyAnswers(shop.merchant.api_key, payment.id);
    await archiveAll(merchantId);
    expect(await rowsInD1(merchantId)).toEqual({ events: 0, operations: 0 });

    // A refund weeks later: its snapshot carries the whole operation history again.
    await shop.act(payment.id, "refund", { amount: "10.00" });
    await settle(shop);
    const later = await historyAnswers(shop.merchant.api_key, payment.id);
    expect(later.events.events.slice(0, first.events.events.length)).toEqual(first.events.events);
    expect(later.events.events.length).toBe(first.events.events.length + 1);
    expect(later.operations.operations.slice(0, first.operations.operations.length)).toEqual(first.operations.operations);
    expect(later.operations.operations.length).toBe(first.operations.operations.length + 2);
    expectUniqueIds(later.events.events);
    expectUniqueIds(later.operations.operations);

    await archiveAll(merchantId);
    expect(await rowsInD1(merchantId)).toEqual({ events: 0, operations: 0 });
    expect(await historyAnswers(shop.merchant.api_key, payment.id)).toEqual(later);
    expect((await ledger(merchantId)).map((object) => object.status)).toEqual(["stored", "stored"]);
  });

  it("names objects by merchant, UTC day and where their range starts", () => {
    expect(objectKey("acme", "2026-03-01", { updatedAt: "2026-03-01T09:05:07.123Z", id: "tr_abc" })).toBe(
      "history/acme/2026-03-01/090507123Z-tr_abc.ndjson.gz",
    );
  });

  it("leaves a merchant's history alone while it is younger than the cutoff", async () => {
    const shop = await openShop({ unlimited: true });
    await shop.pay({ card: "4242424242424242", amount: "3.00", currency: "EUR" });
    await settle(shop);
    const held = await rowsInD1(shop.merchant.merchant.id);
    const steps = await archiveAll(shop.merchant.merchant.id, { cutoff: new Date(Date.now() - 60_000).toISOString() });
    expect(steps).toEqual([{ kind: "idle" }]);
    expect(await rowsInD1(shop.merchant.merchant.id)).toEqual(held);
    expect(await env.ARCHIVE.list({ prefix: `history/${shop.merchant.merchant.id}/` })).toMatchObject({ objects: [] });
  });
});
