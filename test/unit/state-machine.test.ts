import { describe, expect, it } from "vitest";
import type { OperationSnapshot, TransactionSnapshot } from "../../src/smart-router/schemas";
import {
  decide,
  newestSnapshot,
  normalizeTime,
  type SnapshotSource,
  snapshotVersion,
  wasCaptured,
} from "../../src/transactions/state-machine";

const op = (id: number, type: string, at: string, extra: Partial<OperationSnapshot> = {}): OperationSnapshot => ({
  id: `tr_op_${id}`,
  type,
  amount: "10",
  is_attempt: false,
  has_failed: false,
  created_at: at,
  ...extra,
});

function snapshot(status: string, operations: OperationSnapshot[] | null, extra: Partial<TransactionSnapshot> = {}): TransactionSnapshot {
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

const fired = (at: string): SnapshotSource => ({
  kind: "event",
  eventId: `ev_${at.replace(/\D/g, "")}`,
  eventName: "transaction.x",
  firedAt: at,
});
const read = (at: string): SnapshotSource => ({ kind: "read", readAt: at });
const stored = (status: string, s: TransactionSnapshot, source: SnapshotSource) => ({
  status,
  snapshotVersion: snapshotVersion(s, source),
});

const requested = snapshot("waiting", [op(1, "request", "2026-11-01T10:00:00.100Z")]);
const authorized = snapshot("authorized", [...(requested.operations ?? []), op(2, "authorization", "2026-11-01T10:00:01.000Z")], {
  authorized: true,
});
const completed = snapshot("completed", [...(authorized.operations ?? []), op(3, "capture", "2026-11-01T10:00:02.000Z")], {
  captured: true,
});
const refunded = snapshot("refunded", [...(completed.operations ?? []), op(4, "refund", "2026-11-01T10:00:03.000Z")], { captured: true });
// A dispute step under the reading where it appends no operation and moves no timestamp: only status and fired_at differ.
const disputed = { ...completed, status: "chargeback-initiated", chargedback: true };
const won = { ...disputed, status: "solved" };

describe("transaction state machine", () => {
  it("orders snapshots by their own history first, whatever their source times", () => {
    const late = fired("2026-11-01T12:00:00.000Z");
    const early = fired("2026-11-01T10:00:00.000Z");
    expect(snapshotVersion(requested, late) < snapshotVersion(authorized, early)).toBe(true);
    expect(snapshotVersion(authorized, late) < snapshotVersion(completed, early)).toBe(true);
    expect(snapshotVersion(completed, late) < snapshotVersion(refunded, early)).toBe(true);
  });

  it("applies a status-only change with a later fired_at (a dispute outcome without operations)", () => {
    // Failed on the old rule (operation count, operation and transaction times): the outcome stayed chargeback-initiated.
    const before = stored("chargeback-initiated", disputed, fired("2026-11-01T10:05:00.000Z"));
    expect(decide(before, won, fired("2026-11-01T10:10:00.000Z"))).toMatchObject({ kind: "apply", captured: true });
    // ...and the earlier one never overwrites the later, in the other order.
    const after = stored("solved", won, fired("2026-11-01T10:10:00.000Z"));
    expect(decide(after, disputed, fired("2026-11-01T10:05:00.000Z"))).toMatchObject({ kind: "stale", reason: "older_snapshot" });
  });

  it("orders API reads by their read time against events", () => {
    const event = stored("chargeback-initiated", disputed, fired("2026-11-01T10:05:00.000Z"));
    expect(decide(event, won, read("2026-11-01T10:20:00.000Z")).kind).toBe("apply");
    expect(decide(event, won, read("2026-11-01T10:01:00.000Z")).kind).toBe("stale");
  });

  it("keeps microseconds and turns offsets into UTC, so times compare as strings", () => {
    expect(normalizeTime("2026-11-01T11:00:00.123456+01:00")).toBe("2026-11-01T10:00:00.123456Z");
    expect(normalizeTime("2026-11-01T10:00:00Z")).toBe("2026-11-01T10:00:00.000000Z");
    expect(normalizeTime("2026-11-01T10:00:00.123401Z") > normalizeTime("2026-11-01T10:00:00.123400Z")).toBe(true);
    expect(normalizeTime("not a time")).toBe("");
  });

  it("applies the first snapshot it sees", () => {
    expect(decide(null, authorized, fired("2026-11-01T10:00:01.000Z"))).toMatchObject({ kind: "apply", captured: false });
  });

  it("never lets a late authorized overwrite completed", () => {
    const before = stored("completed", completed, fired("2026-11-01T10:00:02.000Z"));
    expect(decide(before, authorized, fired("2026-11-01T10:00:01.000Z"))).toEqual({
      kind: "stale",
      reason: "older_snapshot",
      captured: false,
    });
  });

  it("refuses only pre-capture statuses after a capture, even from a snapshot that claims to be newer", () => {
    const at = fired("2026-11-01T11:00:00.000Z");
    const before = stored("refunded", refunded, fired("2026-11-01T10:00:03.000Z"));
    for (const status of ["waiting", "pending", "authorized", "pending-capture"]) {
      const odd = snapshot(status, [...(refunded.operations ?? []), op(9, "authorization", "2026-11-01T11:00:00.000Z")]);
      expect(decide(before, odd, at)).toMatchObject({ kind: "stale", reason: "would_regress_from_captured" });
    }
  });

  it("applies failed, voided, in-review, blocked or an unknown status after a capture when newer, flagged", () => {
    // Failed on the old rule, which refused every status outside the captured set once captured.
    const at = fired("2026-11-01T11:00:00.000Z");
    const before = stored("completed", completed, fired("2026-11-01T10:00:02.000Z"));
    for (const status of ["failed", "voided", "in-review", "blocked", "settled-by-a-future-smart-router"]) {
      const next = snapshot(status, [...(completed.operations ?? []), op(9, "capture", "2026-11-01T11:00:00.000Z")]);
      expect(decide(before, next, at)).toMatchObject({ kind: "apply", afterCapture: true });
    }
  });

  it("moves forward to refunds and chargebacks after completed", () => {
    const before = stored("completed", completed, fired("2026-11-01T10:00:02.000Z"));
    expect(decide(before, refunded, fired("2026-11-01T10:00:03.000Z"))).toMatchObject({
      kind: "apply",
      captured: true,
      afterCapture: false,
    });
  });

  it("treats an equal snapshot from the same source time as stale (duplicates change nothing)", () => {
    const source = fired("2026-11-01T10:00:02.000Z");
    expect(decide(stored("completed", completed, source), completed, source).kind).toBe("stale");
  });

  it("never lets a snapshot without its operations beat a record whose history is known", () => {
    const before = stored("completed", completed, fired("2026-11-01T10:00:02.000Z"));
    expect(decide(before, snapshot("authorized", null), fired("2026-11-01T12:00:00.000Z")).kind).toBe("stale");
  });

  it("sees capture in status, flag, captured statuses or a successful capture result, and fails closed", () => {
    expect(wasCaptured(completed)).toBe(true);
    expect(wasCaptured(authorized)).toBe(false);
    expect(wasCaptured(snapshot("chargeback-initiated", []))).toBe(true);
    expect(wasCaptured(snapshot("pending", [op(1, "capture", "2026-11-01T10:00:00Z")]))).toBe(true);
    expect(wasCaptured(snapshot("authorized", [op(1, "capture", "2026-11-01T10:00:00Z", { has_failed: true })]))).toBe(false);
    // Failed on the old rule, which counted any capture operation not marked as an attempt or as failed.
    expect(wasCaptured(snapshot("pending", [op(1, "capture", "2026-11-01T10:00:00Z", { is_attempt: null })]))).toBe(false);
    expect(wasCaptured(snapshot("pending", [op(1, "capture", "2026-11-01T10:00:00Z", { has_failed: null })]))).toBe(false);
    expect(wasCaptured(snapshot("pending", [op(1, "capture", "2026-11-01T10:00:00Z", { is_attempt: true, has_failed: false })]))).toBe(
      false,
    );
  });

  it("picks the newest of several snapshots whatever their order", () => {
    const items = [
      { snapshot: refunded, source: fired("2026-11-01T10:00:03.000Z") },
      { snapshot: requested, source: fired("2026-11-01T10:00:00.000Z") },
      { snapshot: won, source: fired("2026-11-01T10:00:09.000Z") },
      { snapshot: disputed, source: fired("2026-11-01T10:00:08.000Z") },
    ];
    expect(newestSnapshot(items)?.snapshot).toBe(refunded);
    expect(newestSnapshot([...items].reverse())?.snapshot).toBe(refunded);
    const dispute = items.slice(2);
    expect(newestSnapshot(dispute)?.snapshot).toBe(won);
    expect(newestSnapshot([...dispute].reverse())?.snapshot).toBe(won);
  });
});
