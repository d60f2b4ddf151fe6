import type { Database } from "../db/client";
import { type EventRecord, recordEvent } from "../events/inbox";
import type { TransactionSnapshot } from "../smart-router/schemas";
import { insertOperations, loadStoredStates, requestFulfillment, type Statement, upsertTransaction } from "./records";
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
  input: { snapshots: VerifiedSnapshot[]; extra?: Statement[]; fulfillmentConfigured: (merchantId: string) => boolean; now: string },
): Promise<ApplyResult> {
  const { snapshots, now } = input;
  const groups = new Map<string, VerifiedSnapshot[]>();
  for (const item of snapshots) {
    const key = `${item.merchantId}\u0000${item.snapshot.id}`;
    groups.set(key, [...(groups.get(key) ?? []), item]);
  }
  const stored = await loadStoredStates(
    db,
    snapshots.map((s) => ({ merchantId: s.merchantId, transactionId: s.snapshot.id })),
  );

  const statements: Statement[] = [...(input.extra ?? [])];
  const outboxIndexes: number[] = [];
  let applied = 0;
  let stale = 0;
  let changedTransactions = 0;
  for (const group of groups.values()) {
    const newest = newestSnapshot(group);
    if (!newest) continue;
    const { merchantId, snapshot } = newest;
    const decision = decide(stored.get(merchantId, snapshot.id), snapshot);
    const seenOperations = new Set<string>();
    for (const item of group) {
      const fresh = (item.snapshot.operations ?? []).filter((op) => !seenOperations.has(op.id));
      for (const op of fresh) seenOperations.add(op.id);
      statements.push(...insertOperations(db, merchantId, { ...item.snapshot, operations: fresh }));
    }
    if (decision.kind === "apply") changedTransactions += 1;
    if (decision.kind === "apply") statements.push(upsertTransaction(db, merchantId, snapshot, decision.version, newest.source, now));
    if (group.some((item) => decide(null, item.snapshot).captured)) {
      outboxIndexes.push(statements.length);
      statements.push(requestFulfillment(db, merchantId, snapshot.id, input.fulfillmentConfigured(merchantId), now));
    }
    for (const item of group) {
      if (!item.inbox) continue;
      const isApplied = item === newest && decision.kind === "apply";
      if (isApplied) applied += 1;
      else stale += 1;
      statements.push(
        recordEvent(db, {
          ...item.inbox,
          name: item.source.eventName,
          transactionId: item.snapshot.id,
          firedAt: item.source.firedAt,
          outcome: isApplied ? "applied" : "stale",
          detail: isApplied ? null : decision.kind === "stale" ? decision.reason : "superseded in batch",
        }),
      );
    }
  }

  if (statements.length === 0) return { changedTransactions, applied, stale, newFulfillments: [] };
  const [first, ...rest] = statements;
  const results = (await db.batch([first as Statement, ...rest])) as unknown[];
  const newFulfillments: FulfillmentNudge[] = [];
  for (const index of outboxIndexes) {
    const rows = results[index] as { merchantId: string; transactionId: string; status: string }[];
    for (const row of rows) {
      if (row.status === "pending") newFulfillments.push({ v: 1, merchant_id: row.merchantId, transaction_id: row.transactionId });
    }
  }
  return { changedTransactions, applied, stale, newFulfillments };
}
