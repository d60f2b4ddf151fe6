import { describe, expect, it } from "vitest";
import { apply, snapshot } from "../../support/apply";
import { createMerchant } from "../../support/fixtures";
import { dbFor } from "../../support/shards";

// 0031: a write removes the references of the record it replaces by their own key, before its upsert (no index by
// transaction). These drive the apply itself and read the references table.

async function referencesOf(merchantId: string, transactionId: string) {
  const { results } = await (await dbFor(merchantId))
    .prepare("SELECT reference FROM transaction_references WHERE merchant_id = ? AND transaction_id = ? ORDER BY reference")
    .bind(merchantId, transactionId)
    .all<{ reference: string }>();
  return results.map((row) => row.reference);
}

const withReferences = (id: string, status: string, count: number, name: string, orderId: unknown) =>
  snapshot(id, status, count, { invoice_id: "iv-1", name, metadata: { order_id: orderId } });

describe("references follow the record that won (0031)", () => {
  it("a newer write replaces the references it changes and keeps the others", async () => {
    const merchantId = (await createMerchant()).merchant.id;
    const id = `tr_refs${Date.now().toString(36)}a`;
    await apply(merchantId, [withReferences(id, "authorized", 2, "Order 1", "ORD-1")]);
    expect(await referencesOf(merchantId, id)).toEqual(["ORD-1", "Order 1", "iv-1"]);
    await apply(merchantId, [withReferences(id, "completed", 4, "Order 1 (paid)", "ORD-2")]);
    expect(await referencesOf(merchantId, id)).toEqual(["ORD-2", "Order 1 (paid)", "iv-1"]);
  });

  it("a stale write, or one refused for leaving a captured status, removes none of the winner's references", async () => {
    const merchantId = (await createMerchant()).merchant.id;
    const id = `tr_refs${Date.now().toString(36)}s`;
    await apply(merchantId, [withReferences(id, "completed", 4, "Paid order", "ORD-9")]);
    await apply(merchantId, [withReferences(id, "authorized", 2, "Old name", "ORD-OLD")]);
    await apply(merchantId, [withReferences(id, "authorized", 5, "Regressed name", "ORD-REG")]);
    expect(await referencesOf(merchantId, id)).toEqual(["ORD-9", "Paid order", "iv-1"]);
  });

  it("a metadata value that is not text is no reference, and dropping one removes it", async () => {
    const merchantId = (await createMerchant()).merchant.id;
    const id = `tr_refs${Date.now().toString(36)}n`;
    await apply(merchantId, [withReferences(id, "authorized", 1, "N", 7)]);
    expect(await referencesOf(merchantId, id)).toEqual(["N", "iv-1"]);
    await apply(merchantId, [withReferences(id, "authorized", 2, "N", "7")]);
    expect(await referencesOf(merchantId, id)).toEqual(["7", "N", "iv-1"]);
    await apply(merchantId, [snapshot(id, "completed", 3, { invoice_id: "iv-1", name: "N", metadata: {} })]);
    expect(await referencesOf(merchantId, id)).toEqual(["N", "iv-1"]);
  });
});
