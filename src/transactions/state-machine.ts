import type { TransactionSnapshot } from "../smart-router/schemas";
import { CAPTURED_STATUSES } from "./status";

/** What the state machine needs of the stored record. */
export interface StoredState {
  status: string;
  snapshotVersion: string;
}

/** Where a snapshot came from: a verified event, or an API read (batch refresh, reconciliation). */
export interface SnapshotSource {
  eventId: string | null;
  eventName: string | null;
  firedAt: string | null;
}

export type Decision =
  | { kind: "apply"; version: string; captured: boolean }
  | { kind: "stale"; reason: "older_snapshot" | "would_regress_from_captured"; captured: boolean };

/** The latest of some timestamps, normalised to ISO 8601 UTC so they compare as strings; "" when there is none. */
function latestIso(values: readonly (string | null | undefined)[]): string {
  const times = values.map((value) => (value ? Date.parse(value) : Number.NaN)).filter((time) => !Number.isNaN(time));
  return times.length === 0 ? "" : new Date(Math.max(...times)).toISOString();
}

/**
 * The snapshot's place in its own history, as a sortable string: operations are only ever appended, so more operations
 * means newer; then the latest operation and the latest transaction timestamp break ties. Arrival order plays no part.
 */
export function snapshotVersion(snapshot: TransactionSnapshot): string {
  const operations = snapshot.operations ?? [];
  const latestOperation = latestIso(operations.map((op) => op.created_at));
  const latestStamp = latestIso([
    snapshot.created_at,
    snapshot.authorized_at,
    snapshot.captured_at,
    snapshot.refunded_at,
    snapshot.voided_at,
    snapshot.chargedback_at,
  ]);
  return `${String(operations.length).padStart(6, "0")}|${latestOperation}|${latestStamp}`;
}

/** Whether the snapshot shows money was captured at some point: the one trigger for fulfilment, for cards and every APM. */
export function wasCaptured(snapshot: TransactionSnapshot): boolean {
  if (snapshot.status === "completed" || snapshot.captured === true) return true;
  if (CAPTURED_STATUSES.has(snapshot.status)) return true;
  return (snapshot.operations ?? []).some((op) => op.type === "capture" && op.is_attempt !== true && op.has_failed !== true);
}

/**
 * Decides whether a snapshot replaces the stored record. Pure: same inputs, same answer, whatever order they arrive in.
 * A snapshot replaces the record only when it is strictly newer by its own history, and never moves a captured payment
 * back onto the pre-capture path (a late `authorized` never overwrites `completed`).
 */
export function decide(stored: StoredState | null, snapshot: TransactionSnapshot): Decision {
  const version = snapshotVersion(snapshot);
  const captured = wasCaptured(snapshot);
  if (stored === null) return { kind: "apply", version, captured };
  if (version <= stored.snapshotVersion) return { kind: "stale", reason: "older_snapshot", captured };
  if (CAPTURED_STATUSES.has(stored.status) && !CAPTURED_STATUSES.has(snapshot.status)) {
    return { kind: "stale", reason: "would_regress_from_captured", captured };
  }
  return { kind: "apply", version, captured };
}

/** Of several snapshots of one transaction, the newest by its own history (the one a batch writes). */
export function newestSnapshot<T extends { snapshot: TransactionSnapshot }>(candidates: readonly T[]): T | undefined {
  let best: T | undefined;
  let bestVersion = "";
  for (const candidate of candidates) {
    const version = snapshotVersion(candidate.snapshot);
    if (best === undefined || version > bestVersion) {
      best = candidate;
      bestVersion = version;
    }
  }
  return best;
}
