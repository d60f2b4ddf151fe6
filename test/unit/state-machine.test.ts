import { describe, expect, it } from "vitest";
import type { OperationSnapshot, TransactionSnapshot } from "../../src/smart-router/schemas";
import { decide, newestSnapshot, snapshotVersion, wasCaptured } from "../../src/transactions/state-machine";

const op = (id: number, type: string, at: string, extra: Partial<OperationSnapshot> = {}): OperationSnapshot => ({
  id: `tr_op_${id}`,
  type,
  amount: "10",
  is_attempt: false,
  has_failed: false,
  created_at: at,
  ...extra,
});

function snapshot(status: string, operations: OperationSnapshot[], extra: Partial<TransactionSnapshot> = {}): TransactionSnapshot {
  return {
    id: "tr_1",
    project_id: "test-proj_1",
    status,
    currency: "EUR",
    amount: "10",
    created_at: "2026-11-01T10:00:00.000Z",
    operations,
    ...extra,
  };
}

const requested = snapshot("waiting", [op(1, "request", "2026-11-01T10:00:00.100Z")]);
const authorized = snapshot("authorized", [...(requested.operations ?? []), op(2, "authorization", "2026-11-01T10:00:01.000Z")], {
  authorized: true,
});
const completed = snapshot("completed", [...(authorized.operations ?? []), op(3, "capture", "2026-11-01T10:00:02.000Z")], {
  captured: true,
});
const refunded = snapshot("refunded", [...(completed.operations ?? []), op(4, "refund", "2026-11-01T10:00:03.000Z")], { captured: true });

describe("transaction state machine", () => {
  it("orders snapshots by their own history", () => {
    expect(snapshotVersion(requested) < snapshotVersion(authorized)).toBe(true);
    expect(snapshotVersion(authorized) < snapshotVersion(completed)).toBe(true);
    expect(snapshotVersion(completed) < snapshotVersion(refunded)).toBe(true);
  });

  it("applies the first snapshot it sees", () => {
    expect(decide(null, authorized)).toMatchObject({ kind: "apply", captured: false });
  });

  it("never lets a late authorized overwrite completed", () => {
    const stored = { status: "completed", snapshotVersion: snapshotVersion(completed) };
    expect(decide(stored, authorized)).toEqual({ kind: "stale", reason: "older_snapshot", captured: false });
  });

  it("refuses a regression from a captured status even if the snapshot claims to be newer", () => {
    const stored = { status: "completed", snapshotVersion: snapshotVersion(authorized) };
    expect(decide(stored, authorized)).toMatchObject({ kind: "stale" });
    const odd = snapshot("authorized", [...(refunded.operations ?? []), op(9, "authorization", "2026-11-01T11:00:00.000Z")]);
    expect(decide({ status: "refunded", snapshotVersion: snapshotVersion(refunded) }, odd)).toMatchObject({
      kind: "stale",
      reason: "would_regress_from_captured",
    });
  });

  it("moves forward to refunds and chargebacks after completed", () => {
    const stored = { status: "completed", snapshotVersion: snapshotVersion(completed) };
    expect(decide(stored, refunded)).toMatchObject({ kind: "apply", captured: true });
  });

  it("treats an equal snapshot as stale (duplicates change nothing)", () => {
    const stored = { status: "completed", snapshotVersion: snapshotVersion(completed) };
    expect(decide(stored, completed).kind).toBe("stale");
  });

  it("sees capture in status, flag, captured statuses or a successful capture result", () => {
    expect(wasCaptured(completed)).toBe(true);
    expect(wasCaptured(authorized)).toBe(false);
    expect(wasCaptured(snapshot("chargeback-initiated", []))).toBe(true);
    expect(wasCaptured(snapshot("authorized", [op(1, "capture", "2026-11-01T10:00:00Z", { has_failed: true })]))).toBe(false);
    expect(wasCaptured(snapshot("pending", [op(1, "capture", "2026-11-01T10:00:00Z")]))).toBe(true);
  });

  it("picks the newest of several snapshots whatever their order", () => {
    const items = [refunded, requested, completed, authorized].map((s) => ({ snapshot: s }));
    expect(newestSnapshot(items)?.snapshot).toBe(refunded);
    expect(newestSnapshot([...items].reverse())?.snapshot).toBe(refunded);
  });
});
