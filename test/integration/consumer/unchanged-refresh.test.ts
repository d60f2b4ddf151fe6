import { describe, expect, it } from "vitest";
import { openDatabase } from "../../../src/db/client";
import type { TransactionSnapshot } from "../../../src/smart-router/schemas";
import { applySnapshots, type VerifiedSnapshot } from "../../../src/transactions/apply";
import { apply, snapshot } from "../../support/apply";
import { createMerchant } from "../../support/fixtures";
import { meteredD1 } from "../../support/recording-d1";
import { dbFor } from "../../support/shards";

// A read of a payment that shows nothing new (reconciliation refreshes every in-flight record each
// RECONCILE_AFTER_MINUTES; a batch refresh re-reads what the merchant asked for) is newer than the record, so the
// compare-and-set would replace it: it used to rewrite the row and every index and stamp `updated_at`, so a merchant
// polling `updated_after` saw an unchanged payment again and again, and the record never aged past retention's cutoff.
// Now it only advances the record's version (records.ts touchUnchangedReads).

/** Applies snapshots as API reads at `readAt` (reconciliation's source); answers the apply's result. */
async function refresh(merchantId: string, snapshots: TransactionSnapshot[], readAt: string, d1?: D1Database) {
  const verified = snapshots.map((item): VerifiedSnapshot => ({ merchantId, snapshot: item, source: { kind: "read", readAt } }));
  return applySnapshots({
    db: openDatabase(d1 ?? (await dbFor(merchantId))),
    snapshots: verified,
    fulfillment: () => "not_configured",
    now: new Date().toISOString(),
  });
}

type Stored = {
  status: string;
  amount: string;
  updated_at: string;
  snapshot_version: string;
  last_event_id: string | null;
  status_changes: number;
  status_history: string | null;
};

async function stored(merchantId: string, id: string) {
  return (await dbFor(merchantId))
    .prepare(
      "SELECT status, amount, updated_at, snapshot_version, last_event_id, status_changes, status_history FROM transactions WHERE merchant_id = ? AND id = ?",
    )
    .bind(merchantId, id)
    .first<Stored>();
}

/** A merchant with one authorized payment stored from a webhook; answers its record as stored. */
async function authorizedPayment(tag: string) {
  const { merchant } = await createMerchant();
  const merchantId = merchant.id;
  const id = `tr_unchanged_${tag}_${crypto.randomUUID().slice(0, 8)}`;
  await apply(merchantId, [snapshot(id, "authorized", 2)]);
  const before = await stored(merchantId, id);
  if (!before) throw new Error("the payment was not stored");
  return { merchantId, id, before };
}

const later = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();

describe("a read that shows nothing new (happy)", () => {
  it("advances the record's version only: updated_at, last_event, status history and change count stay; nothing counts as changed", async () => {
    const { merchantId, id, before } = await authorizedPayment("keeps");
    const result = await refresh(merchantId, [snapshot(id, "authorized", 2)], later(60));
    const after = await stored(merchantId, id);
    expect(result.changedTransactions).toBe(0);
    expect(after).toEqual({ ...before, snapshot_version: expect.any(String) });
    expect(String(after?.snapshot_version) > before.snapshot_version).toBe(true);
    expect(after?.last_event_id).not.toBeNull();
  });

  it("writes one row (the record's, no index entry) where a changing read rewrites the record and its indexes", async () => {
    const { merchantId, id } = await authorizedPayment("rows");
    const unchanged = meteredD1(await dbFor(merchantId));
    await refresh(merchantId, [snapshot(id, "authorized", 2)], later(60), unchanged.d1);
    expect(unchanged.meter.rowsWritten).toBe(1);

    const changing = meteredD1(await dbFor(merchantId));
    await refresh(merchantId, [snapshot(id, "authorized", 2, { amount: "12.00" })], later(120), changing.d1);
    expect(changing.meter.rowsWritten).toBeGreaterThan(1);
    expect((await stored(merchantId, id))?.amount).toBe("12.00");
  });

  it("a read that changes anything is written whole, as before (a status, an amount, a new operation)", async () => {
    const { merchantId, id, before } = await authorizedPayment("changes");
    const captured = await refresh(merchantId, [snapshot(id, "completed", 3)], later(60));
    const after = await stored(merchantId, id);
    expect(captured.changedTransactions).toBe(1);
    expect(after?.status).toBe("completed");
    expect(after?.status_changes).toBe(before.status_changes + 1);
    expect(String(after?.updated_at) > before.updated_at).toBe(true);
    // A read's write names no event (as before this change).
    expect(after?.last_event_id).toBeNull();
  });
});

describe("a read that shows nothing new (errors: ordering stays right)", () => {
  it("an older snapshot arriving after it stays stale: the version moved, though nothing else did", async () => {
    const { merchantId, id } = await authorizedPayment("older");
    await refresh(merchantId, [snapshot(id, "authorized", 2)], later(120));
    // A read taken before that refresh but applied after it, showing a status the payment no longer has.
    const late = await refresh(merchantId, [snapshot(id, "voided", 2)], later(60));
    expect(late.changedTransactions).toBe(0);
    expect((await stored(merchantId, id))?.status).toBe("authorized");
  });

  it("a read older than the record changes nothing at all, not even the version", async () => {
    const { merchantId, id, before } = await authorizedPayment("stale");
    await refresh(merchantId, [snapshot(id, "authorized", 2)], "2000-01-01T00:00:00.000Z");
    expect(await stored(merchantId, id)).toEqual(before);
  });

  it("a refresh of many payments in one batch touches the unchanged and writes the changed, each as its own", async () => {
    const { merchant } = await createMerchant();
    const ids = Array.from({ length: 4 }, (_, n) => `tr_unchanged_many_${n}_${crypto.randomUUID().slice(0, 8)}`);
    await apply(
      merchant.id,
      ids.map((id) => snapshot(id, "authorized", 2)),
    );
    const before = await Promise.all(ids.map((id) => stored(merchant.id, id)));
    const result = await refresh(
      merchant.id,
      ids.map((id, n) => snapshot(id, n % 2 === 0 ? "authorized" : "completed", n % 2 === 0 ? 2 : 3)),
      later(60),
    );
    const after = await Promise.all(ids.map((id) => stored(merchant.id, id)));
    expect(result.changedTransactions).toBe(2);
    expect(after.map((row) => row?.status)).toEqual(["authorized", "completed", "authorized", "completed"]);
    expect(after.map((row, n) => row?.updated_at === before[n]?.updated_at)).toEqual([true, false, true, false]);
  });
});

describe("a read that shows nothing new (security)", () => {
  it("touches only its own merchant's record of that id", async () => {
    const first = await authorizedPayment("mine");
    const { merchant: other } = await createMerchant();
    await apply(other.id, [snapshot(first.id, "authorized", 2)]);
    const othersBefore = await stored(other.id, first.id);
    await refresh(first.merchantId, [snapshot(first.id, "authorized", 2)], later(60));
    expect(await stored(other.id, first.id)).toEqual(othersBefore);
    expect((await stored(first.merchantId, first.id))?.snapshot_version).not.toBe(first.before.snapshot_version);
  });
});
