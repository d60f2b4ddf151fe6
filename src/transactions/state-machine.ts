import type { TransactionSnapshot } from "../smart-router/schemas";
import { CAPTURED_STATUSES, PRE_CAPTURE_STATUSES } from "../smart-router/status";

/** What the state machine needs of the stored record. */
export interface StoredState {
  status: string;
  snapshotVersion: string;
}

/**
 * Where a snapshot came from, with the Smart Router time it stands for:
 * - a verified event: its `fired_at`, Smart Router's clock for that snapshot;
 * - an API read (batch refresh, reconciliation, a sync page): a lower bound of the time of the read, from
 *   `readTimeOf` in smart-router/client.ts (Smart Router's `Date` header less its 1 s resolution).
 */
export type SnapshotSource = { kind: "event"; eventId: string; eventName: string; firedAt: string } | { kind: "read"; readAt: string };

export type Decision =
  | { kind: "apply"; version: string; captured: boolean; afterCapture: boolean }
  | { kind: "stale"; reason: "older_snapshot" | "would_regress_from_captured"; captured: boolean };

/** The time a source stands for. */
export function sourceTime(source: SnapshotSource): string {
  return source.kind === "event" ? source.firedAt : source.readAt;
}

/**
 * An RFC 3339 time as ISO 8601 UTC with six fractional digits, so times compare as strings: any offset is turned into
 * `Z`, and sub-millisecond digits (which `Date` drops) are kept, so two events a few microseconds apart do not tie.
 * "" for a time that does not parse (it sorts before every real time).
 */
export function normalizeTime(value: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) return "";
  const micros = /\.\d{3}(\d{1,3})/.exec(value)?.[1] ?? "";
  return `${new Date(ms).toISOString().slice(0, -1)}${micros.padEnd(3, "0")}Z`;
}

/**
 * The snapshot's place in Smart Router's history, as a sortable string. Derived only from what Smart Router
 * guarantees: operations are append-only, so a snapshot with more operations is newer whatever its other fields; with
 * the same operations, the later source time is newer (a status-only change, such as a dispute's outcome or a review
 * decision, may append no operation and move no timestamp, so nothing in the transaction itself can order those).
 * A snapshot without its operations (null) counts as none: it never beats a record whose history is known.
 */
export function snapshotVersion(snapshot: TransactionSnapshot, source: SnapshotSource): string {
  const count = snapshot.operations?.length ?? 0;
  return `${String(count).padStart(6, "0")}|${normalizeTime(sourceTime(source))}`;
}

/**
 * Whether the snapshot shows money was captured at some point: the one trigger for fulfilment, for cards and every APM.
 * Fails closed: a capture operation counts only as a result (`is_attempt === false`) that did not fail
 * (`has_failed === false`); otherwise only the status or the `captured` flag can say so.
 */
export function wasCaptured(snapshot: TransactionSnapshot): boolean {
  if (snapshot.captured === true || CAPTURED_STATUSES.has(snapshot.status)) return true;
  return (snapshot.operations ?? []).some((op) => op.type === "capture" && op.is_attempt === false && op.has_failed === false);
}

/** When the money was captured: `captured_at`, else the first successful capture result, else null. */
export function captureTime(snapshot: TransactionSnapshot): string | null {
  if (snapshot.captured_at) return snapshot.captured_at;
  const results = (snapshot.operations ?? []).filter((op) => op.type === "capture" && op.is_attempt === false && op.has_failed === false);
  return results.map((op) => op.created_at).sort()[0] ?? null;
}

/**
 * Decides whether a snapshot replaces the stored record. Pure: same inputs, same answer, whatever order they arrive in.
 * A snapshot replaces the record only when it is strictly newer (`snapshotVersion`), and a captured payment never goes
 * back onto the pre-capture path (a late `authorized` never overwrites `completed`). Any other status after a capture
 * (`failed`, `voided`, `in-review`, `blocked`, one Smart Router adds later) is applied, flagged `afterCapture`.
 * Mirrored in SQL by `upsertTransactions` (records.ts), which is what actually decides under concurrency.
 */
export function decide(stored: StoredState | null, snapshot: TransactionSnapshot, source: SnapshotSource): Decision {
  const version = snapshotVersion(snapshot, source);
  const captured = wasCaptured(snapshot);
  if (stored === null) return { kind: "apply", version, captured, afterCapture: false };
  if (version <= stored.snapshotVersion) return { kind: "stale", reason: "older_snapshot", captured };
  const storedCaptured = CAPTURED_STATUSES.has(stored.status);
  if (storedCaptured && PRE_CAPTURE_STATUSES.has(snapshot.status)) {
    return { kind: "stale", reason: "would_regress_from_captured", captured };
  }
  return { kind: "apply", version, captured, afterCapture: storedCaptured && !CAPTURED_STATUSES.has(snapshot.status) };
}

/** Of several snapshots of one transaction, the newest by its own history and source time (the one a batch writes). */
export function newestSnapshot<T extends { snapshot: TransactionSnapshot; source: SnapshotSource }>(
  candidates: readonly T[],
): T | undefined {
  let best: T | undefined;
  let bestVersion = "";
  for (const candidate of candidates) {
    const version = snapshotVersion(candidate.snapshot, candidate.source);
    if (best === undefined || version > bestVersion) {
      best = candidate;
      bestVersion = version;
    }
  }
  return best;
}
