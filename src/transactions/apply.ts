import { type BatchStatement, type JsonRow, runBatch } from "../db/bulk";
import type { Database } from "../db/client";
import { type EventRecord, recordEvents } from "../events/inbox";
import type { TransactionSnapshot } from "../smart-router/schemas";
import {
  loadStoredStates,
  operationRows,
  requestFulfillments,
  storeOperations,
  type TransactionWrite,
  upsertTransactions,
} from "./records";
import { decide, newestSnapshot, type SnapshotSource } from "./state-machine";

/** A transaction snapshot proven authentic (fetched back from Smart Router), with the inbox entry it came from, if any. */
export interface VerifiedSnapshot {
  merchantId: string;
  snapshot: TransactionSnapshot;
  source: SnapshotSource;
  inbox?: Omit<EventRecord, "name" | "transactionId" | "firedAt" | "outcome" | "detail">;
}

export interface FulfillmentNudge {
  v: 1;
  merchant_id: string;
  transaction_id: string;
}

export interface ApplyResult {
  /** Transactions whose record changed. */
  changedTransactions: number;
  applied: number;
  stale: number;
  newFulfillments: FulfillmentNudge[];
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
    fulfillmentConfigured: (merchantId: string) => boolean;
    now: string;
  },
): Promise<ApplyResult> {
  const { snapshots, now } = input;
  const groups = new Map<string, VerifiedSnapshot[]>();
  for (const item of snapshots) {
    const key = `${item.merchantId}\u0000${item.snapshot.id}`;
    groups.set(key, [...(groups.get(key) ?? []), item]);
  }
  const stored = await loadStoredStates(
    db,
    snapshots.map((s) => ({ merchantId: s.merchantId, id: s.snapshot.id })),
  );

  const inbox: EventRecord[] = [...(input.inbox ?? [])];
  const operationRowsToStore: JsonRow[] = [];
  const transactionWrites: TransactionWrite[] = [];
  const fulfillmentRequests: { merchantId: string; transactionId: string; configured: boolean }[] = [];
  let applied = 0;
  let stale = 0;
  for (const group of groups.values()) {
    const newest = newestSnapshot(group);
    if (!newest) continue;
    const { merchantId, snapshot } = newest;
    const decision = decide(stored.get(merchantId, snapshot.id), snapshot);
    const seenOperations = new Set<string>();
    for (const item of group) {
      for (const row of operationRows(merchantId, item.snapshot)) {
        if (seenOperations.has(String(row.id))) continue;
        seenOperations.add(String(row.id));
        operationRowsToStore.push(row);
      }
    }
    if (decision.kind === "apply") transactionWrites.push({ merchantId, snapshot, version: decision.version, source: newest.source });
    if (group.some((item) => decide(null, item.snapshot).captured)) {
      fulfillmentRequests.push({ merchantId, transactionId: snapshot.id, configured: input.fulfillmentConfigured(merchantId) });
    }
    for (const item of group) {
      if (!item.inbox) continue;
      const isApplied = item === newest && decision.kind === "apply";
      if (isApplied) applied += 1;
      else stale += 1;
      inbox.push({
        ...item.inbox,
        name: item.source.eventName,
        transactionId: item.snapshot.id,
        firedAt: item.source.firedAt,
        outcome: isApplied ? "applied" : "stale",
        detail: isApplied ? null : decision.kind === "stale" ? decision.reason : "superseded in batch",
      });
    }
  }

  // One statement per table (per 500 rows), whatever the number of events: the batch is a handful of statements.
  const statements: BatchStatement[] = [
    ...(input.extra ?? []),
    ...recordEvents(inbox),
    ...storeOperations(operationRowsToStore),
    ...upsertTransactions(transactionWrites, now),
  ];
  const outboxFrom = statements.length;
  statements.push(...requestFulfillments(fulfillmentRequests, now));
  const changedTransactions = transactionWrites.length;

  if (statements.length === 0) return { changedTransactions, applied, stale, newFulfillments: [] };
  const results = await runBatch(db.$client, statements);
  const newFulfillments: FulfillmentNudge[] = [];
  for (const result of results.slice(outboxFrom)) {
    for (const row of result.results as { merchant_id: string; transaction_id: string; status: string }[]) {
      if (row.status === "pending") newFulfillments.push({ v: 1, merchant_id: row.merchant_id, transaction_id: row.transaction_id });
    }
  }
  return { changedTransactions, applied, stale, newFulfillments };
}
