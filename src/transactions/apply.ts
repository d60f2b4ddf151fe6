import { type BatchStatement, type JsonRow, runBatch } from "../db/bulk";
import type { Database } from "../db/client";
import type { FulfillmentStatus } from "../db/schema";
import { log } from "../lib/log";
import type { TransactionSnapshot } from "../smart-router/schemas";
import { type EventRecord, recordEvents, recordVerifiedEvents, type VerifiedEventRecord } from "./inbox";
import {
  loadStoredStates,
  operationRows,
  requestFulfillments,
  storeOperations,
  type TransactionWrite,
  upsertTransactions,
} from "./records";
import { decide, newestSnapshot, type SnapshotSource, snapshotVersion, wasCaptured } from "./state-machine";
import { recordStatusChanges } from "./timeline-record";

/** A transaction snapshot proven authentic (fetched back from Smart Router), with the inbox entry it came from, if any. */
export interface VerifiedSnapshot {
  merchantId: string;
  snapshot: TransactionSnapshot;
  source: SnapshotSource;
  inbox?: Pick<EventRecord, "eventId" | "deliveries" | "receivedAt" | "now">;
}

export interface FulfillmentNudge {
  v: 1;
  merchant_id: string;
  transaction_id: string;
}

export interface ApplyResult {
  /** Transactions whose record the compare-and-set wrote. */
  changedTransactions: number;
  /** Inbox outcomes as recorded: from what the compare-and-set wrote, not from what was read before it. */
  applied: number;
  stale: number;
  newFulfillments: FulfillmentNudge[];
}

/** How a first capture is to be fulfilled: decided by the caller, who knows the merchant (see fulfillment/policy.ts). */
export type FulfillmentPolicy = (merchantId: string, captured: VerifiedSnapshot) => FulfillmentStatus;

/** The snapshot of a group that decides its fulfilment: one from a webhook if any (webhooks fulfil), else the first. */
function capturedWitness(group: readonly VerifiedSnapshot[]): VerifiedSnapshot | undefined {
  const captured = group.filter((item) => wasCaptured(item.snapshot));
  return captured.find((item) => item.source.kind === "event") ?? captured[0];
}

/**
 * Applies verified snapshots in one D1 batch (one transaction): several snapshots of one transaction collapse to one
 * conditional upsert of the newest, operations from all of them are inserted once, the outbox gains a row on the first
 * capture, and every inbox outcome is written alongside. Either all of it commits or none of it does.
 */
export async function applySnapshots(
  db: Database,
  input: {
    snapshots: VerifiedSnapshot[];
    /** Inbox records decided before this call (rejected, ignored, retried, duplicates). */
    inbox?: EventRecord[];
    /** Other statements that must commit with these writes (batch progress). */
    extra?: BatchStatement[];
    fulfillment: FulfillmentPolicy;
    now: string;
  },
): Promise<ApplyResult> {
  const { snapshots, now } = input;
  const groups = Map.groupBy(snapshots, (item) => `${item.merchantId}\u0000${item.snapshot.id}`);
  // Read only to explain outcomes and warn; the compare-and-set in SQL is what decides.
  const stored = await loadStoredStates(
    db,
    snapshots.map((s) => ({ merchantId: s.merchantId, id: s.snapshot.id })),
  );

  const operationRowsToStore: JsonRow[] = [];
  const transactionWrites: TransactionWrite[] = [];
  const verifiedEvents: VerifiedEventRecord[] = [];
  const fulfillmentRequests: { merchantId: string; transactionId: string; status: FulfillmentStatus }[] = [];
  for (const group of groups.values()) {
    const newest = newestSnapshot(group);
    if (!newest) continue;
    const { merchantId, snapshot } = newest;
    const previous = stored.get(merchantId, snapshot.id);
    const decision = decide(previous, snapshot, newest.source);
    const seenOperations = new Set<string>();
    for (const item of group) {
      for (const row of operationRows(merchantId, item.snapshot)) {
        if (seenOperations.has(String(row.id))) continue;
        seenOperations.add(String(row.id));
        operationRowsToStore.push(row);
      }
    }
    if (decision.kind === "apply") {
      transactionWrites.push({ merchantId, snapshot, version: decision.version, source: newest.source });
      if (decision.afterCapture) {
        log("warn", "transaction.status_after_capture", {
          merchant_id: merchantId,
          transaction_id: snapshot.id,
          from: previous?.status,
          to: snapshot.status,
        });
      }
    }
    const witness = capturedWitness(group);
    if (witness) fulfillmentRequests.push({ merchantId, transactionId: snapshot.id, status: input.fulfillment(merchantId, witness) });
    for (const item of group) {
      if (!item.inbox || item.source.kind !== "event") continue;
      const staleDetail =
        item !== newest ? "superseded in batch" : decision.kind === "stale" ? decision.reason : "a newer snapshot was stored first";
      verifiedEvents.push({
        ...item.inbox,
        merchantId,
        name: item.source.eventName,
        transactionId: snapshot.id,
        firedAt: item.source.firedAt,
        version: snapshotVersion(item.snapshot, item.source),
        staleDetail,
      });
    }
  }

  // One statement per table (per 500 rows), whatever the number of events. Order matters: the verified events read the
  // transactions the upsert just wrote.
  const statements: BatchStatement[] = [
    ...(input.extra ?? []),
    ...recordEvents(input.inbox ?? []),
    ...storeOperations(operationRowsToStore),
  ];
  const upsertsFrom = statements.length;
  statements.push(...upsertTransactions(transactionWrites));
  const eventsFrom = statements.length;
  statements.push(...recordVerifiedEvents(verifiedEvents));
  const outboxFrom = statements.length;
  statements.push(...requestFulfillments(fulfillmentRequests, now));
  const historyFrom = statements.length;
  // After the upsert: the status changes it actually made, for the payment's timeline.
  statements.push(...recordStatusChanges(transactionWrites));

  if (statements.length === 0) return { changedTransactions: 0, applied: 0, stale: 0, newFulfillments: [] };
  const results = await runBatch(db.$client, statements);
  const rowsOf = (from: number, to: number) => results.slice(from, to).flatMap((result) => result.results);
  const outcomes = rowsOf(eventsFrom, outboxFrom) as { outcome: string }[];
  const newFulfillments: FulfillmentNudge[] = (
    rowsOf(outboxFrom, historyFrom) as { merchant_id: string; transaction_id: string; status: string }[]
  )
    .filter((row) => row.status === "pending")
    .map((row) => ({ v: 1, merchant_id: row.merchant_id, transaction_id: row.transaction_id }));
  return {
    changedTransactions: rowsOf(upsertsFrom, eventsFrom).length,
    applied: outcomes.filter((row) => row.outcome === "applied").length,
    stale: outcomes.filter((row) => row.outcome === "stale").length,
    newFulfillments,
  };
}
