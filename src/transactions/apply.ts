import { type BatchStatement, runBatch } from "../db/bulk";
import type { Database } from "../db/client";
import type { FulfillmentStatus } from "../db/schema";
import { log } from "../lib/log";
import type { OperationSnapshot, TransactionSnapshot } from "../smart-router/schemas";
import { type EventRecord, recordEvents, recordVerifiedEvents, type VerifiedEventRecord } from "./inbox";
import {
  type HistoryMerge,
  loadStoredStates,
  mergeOperationHistories,
  requestFulfillments,
  type TransactionWrite,
  touchUnchangedReads,
  upsertTransactions,
} from "./records";
import { recordReferences, removeReplacedReferences } from "./references";
import {
  captureTime,
  type Decision,
  decide,
  newestSnapshot,
  type SnapshotSource,
  type StoredState,
  snapshotVersion,
  wasCaptured,
} from "./state-machine";
import { type EndpointLane, type StreamEntry, streamStatements } from "./stream";

/** A transaction snapshot proven authentic (fetched back from Smart Router), with the inbox entry it came from, if any. */
export interface VerifiedSnapshot {
  merchantId: string;
  snapshot: TransactionSnapshot;
  source: SnapshotSource;
  inbox?: Pick<EventRecord, "eventId" | "deliveries" | "receivedAt" | "now" | "firstDeliveryId" | "fetchBack">;
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
  /** Endpoint lanes that gained a message in this batch, each once: their consumer sends the lane's next message. */
  endpointLanes: EndpointLane[];
}

/** How a first capture is to be fulfilled: decided by the caller, who knows the merchant (see fulfillment/policy.ts). */
export type FulfillmentPolicy = (merchantId: string, captured: VerifiedSnapshot) => FulfillmentStatus;

/** What `applySnapshots` takes: the snapshots, and what must commit with them. */
export interface ApplyInput {
  db: Database;
  snapshots: VerifiedSnapshot[];
  /** Inbox records decided before this call (rejected, ignored, retried, duplicates). */
  inbox?: EventRecord[];
  /** Other statements that must commit with these writes (batch progress). */
  extra?: BatchStatement[];
  /** Statements that must see the inbox as this batch leaves it (the timeline's fetch-backs a row did not fold). */
  afterInbox?: BatchStatement[];
  fulfillment: FulfillmentPolicy;
  now: string;
}

/** What the snapshots are to write, decided against what was stored before; the compare-and-set still decides in SQL. */
interface PlannedWrites {
  transactions: TransactionWrite[];
  /** Stale groups holding operations their record may lack (the upsert carries an applied group's own). */
  historyMerges: HistoryMerge[];
  verifiedEvents: VerifiedEventRecord[];
  fulfillments: { merchantId: string; transactionId: string; status: FulfillmentStatus }[];
  /** What each transaction's stream of changes sees of this apply (transactions/stream.ts). */
  stream: StreamEntry[];
  /** Fields of the `transaction.status_after_capture` warnings, one per write that leaves a captured status. */
  afterCapture: { merchant_id: string; transaction_id: string; from: string | undefined; to: string }[];
}

/**
 * The statement groups of one apply, in the order the D1 batch runs them. Order matters: `extra` runs before the inbox
 * write (deliveries and forged counts read the inbox as it was), the verified events, history merges and the stream
 * read the transactions the upsert just wrote (its status history included), and `afterInbox` reads both inbox writes. One statement per table (per 500 rows),
 * whatever the number of events.
 */
const STATEMENT_GROUPS = [
  "extra",
  "inbox",
  "replacedReferences",
  "upserts",
  "historyMerges",
  "verifiedEvents",
  "afterInbox",
  "fulfillments",
  "stream",
  "references",
  "touches",
] as const;
type StatementGroup = (typeof STATEMENT_GROUPS)[number];
type StatementPlan = Record<StatementGroup, readonly BatchStatement[]>;

/** The snapshot of a group that decides its fulfilment: one from a webhook if any (webhooks fulfil), else the first. */
function capturedWitness(group: readonly VerifiedSnapshot[]): VerifiedSnapshot | undefined {
  const captured = group.filter((item) => wasCaptured(item.snapshot));
  return captured.find((item) => item.source.kind === "event") ?? captured[0];
}

/** The operations of every snapshot of a group, each operation id once (as first seen). */
function groupOperations(group: readonly VerifiedSnapshot[]): OperationSnapshot[] {
  const byId = new Map<string, OperationSnapshot>();
  for (const item of group) for (const op of item.snapshot.operations ?? []) if (!byId.has(op.id)) byId.set(op.id, op);
  return [...byId.values()];
}

/** How many operations the stored snapshot had: the first six characters of its version (state-machine.ts). */
const storedOperationCount = (previous: StoredState | null) => (previous ? Number.parseInt(previous.snapshotVersion.slice(0, 6), 10) : 0);

/** The inbox rows of a group's webhook events, each with why it would be stale as far as the read before could tell. */
function groupVerifiedEvents(group: readonly VerifiedSnapshot[], newest: VerifiedSnapshot, decision: Decision): VerifiedEventRecord[] {
  const records: VerifiedEventRecord[] = [];
  for (const item of group) {
    if (!item.inbox || item.source.kind !== "event") continue;
    const staleDetail =
      item !== newest ? "superseded in batch" : decision.kind === "stale" ? decision.reason : "a newer snapshot was stored first";
    records.push({
      ...item.inbox,
      merchantId: newest.merchantId,
      name: item.source.eventName,
      transactionId: newest.snapshot.id,
      firedAt: item.source.firedAt,
      version: snapshotVersion(item.snapshot, item.source),
      staleDetail,
    });
  }
  return records;
}

/** Adds to `writes` what one transaction's snapshots write: several collapse to one upsert of the newest. */
function planGroup(
  group: readonly VerifiedSnapshot[],
  stored: (merchantId: string, transactionId: string) => StoredState | null,
  fulfillment: FulfillmentPolicy,
  writes: PlannedWrites,
): void {
  const newest = newestSnapshot(group);
  if (!newest) return;
  const { merchantId, snapshot, source } = newest;
  const previous = stored(merchantId, snapshot.id);
  const decision = decide(previous, snapshot, source);
  const operations = groupOperations(group);
  if (decision.kind === "stale" && operations.length > storedOperationCount(previous)) {
    writes.historyMerges.push({ merchantId, transactionId: snapshot.id, operations });
  }
  if (decision.kind === "apply") {
    writes.transactions.push({ merchantId, snapshot, version: decision.version, source, operations });
    if (decision.afterCapture) {
      writes.afterCapture.push({ merchant_id: merchantId, transaction_id: snapshot.id, from: previous?.status, to: snapshot.status });
    }
  }
  const witness = capturedWitness(group);
  if (witness) writes.fulfillments.push({ merchantId, transactionId: snapshot.id, status: fulfillment(merchantId, witness) });
  const version = decision.kind === "apply" ? decision.version : null;
  if (version !== null || witness) {
    const capture = witness
      ? { byEvent: witness.source.kind === "event", at: captureTime(witness.snapshot) ?? witness.snapshot.created_at }
      : null;
    writes.stream.push({ merchantId, transactionId: snapshot.id, version, capture });
  }
  writes.verifiedEvents.push(...groupVerifiedEvents(group, newest, decision));
}

/** Pure (no I/O; the policy is the caller's): what the snapshots write, one transaction at a time, in first-seen order. */
function planWrites(
  snapshots: readonly VerifiedSnapshot[],
  stored: (merchantId: string, transactionId: string) => StoredState | null,
  fulfillment: FulfillmentPolicy,
): PlannedWrites {
  const writes: PlannedWrites = { transactions: [], historyMerges: [], verifiedEvents: [], fulfillments: [], stream: [], afterCapture: [] };
  for (const group of Map.groupBy(snapshots, (item) => `${item.merchantId}\u0000${item.snapshot.id}`).values()) {
    planGroup(group, stored, fulfillment, writes);
  }
  return writes;
}

/** The statements of the planned writes, by group. */
function planStatements(input: ApplyInput, writes: PlannedWrites): StatementPlan {
  return {
    extra: input.extra ?? [],
    inbox: recordEvents(input.inbox ?? []),
    // Before the upsert: the references its write will take away, read from the record it replaces.
    replacedReferences: removeReplacedReferences(writes.transactions),
    upserts: upsertTransactions(writes.transactions),
    // After the upsert: a stale group's new operations, against the record as the upsert left it.
    historyMerges: mergeOperationHistories(writes.historyMerges),
    verifiedEvents: recordVerifiedEvents(writes.verifiedEvents),
    afterInbox: input.afterInbox ?? [],
    fulfillments: requestFulfillments(writes.fulfillments, input.now),
    // After the upsert and the fulfilment outbox: each status change numbered, and owed to every subscribed endpoint.
    stream: streamStatements(writes.stream),
    // After the upsert: the merchant's own references of what it stored, for `GET /v1/transactions?reference=`.
    references: recordReferences(writes.transactions),
    // Last: a read that showed nothing new only advances its record's version (records.ts).
    touches: touchUnchangedReads(writes.transactions),
  };
}

/** The rows each group's statements returned, by group name. */
type GroupRows = (group: StatementGroup) => Record<string, unknown>[];

/** Runs every group as one D1 batch (one transaction), in `STATEMENT_GROUPS` order; no batch when there is nothing to run. */
async function runGroups(d1: D1Database, plan: StatementPlan): Promise<GroupRows> {
  const named = STATEMENT_GROUPS.flatMap((group) => plan[group].map((statement) => ({ group, statement })));
  if (named.length === 0) return () => [];
  const results = await runBatch(
    d1,
    named.map((item) => item.statement),
  );
  const rows = named.map((item, index) => ({ group: item.group, rows: results[index]?.results ?? [] }));
  return (group) => rows.filter((item) => item.group === group).flatMap((item) => item.rows);
}

/** What the batch did, read from the rows its compare-and-set statements returned. */
function applyResult(rowsOf: GroupRows): ApplyResult {
  const outcomes = rowsOf("verifiedEvents").map((row) => row.outcome);
  const newFulfillments = rowsOf("fulfillments")
    .filter((row) => row.status === "pending")
    .map((row): FulfillmentNudge => ({ v: 1, merchant_id: String(row.merchant_id), transaction_id: String(row.transaction_id) }));
  return {
    changedTransactions: rowsOf("upserts").length,
    applied: outcomes.filter((outcome) => outcome === "applied").length,
    stale: outcomes.filter((outcome) => outcome === "stale").length,
    newFulfillments,
    endpointLanes: [
      ...new Map(
        rowsOf("stream").map((row): [string, EndpointLane] => {
          const lane = {
            merchant_id: String(row.merchant_id),
            endpoint_id: String(row.endpoint_id),
            transaction_id: String(row.transaction_id),
          };
          return [`${lane.endpoint_id}\u0000${lane.transaction_id}`, lane];
        }),
      ).values(),
    ],
  };
}

/**
 * Applies verified snapshots in one D1 batch (one transaction): several snapshots of one transaction collapse to one
 * conditional upsert of the newest, which carries the operations of all of them into the record's history, the outbox gains a row on the first
 * capture, and every inbox outcome is written alongside. Either all of it commits or none of it does.
 */
export async function applySnapshots(input: ApplyInput): Promise<ApplyResult> {
  const { db, snapshots } = input;
  // Read only to explain outcomes and warn; the compare-and-set in SQL is what decides.
  const stored = await loadStoredStates(
    db,
    snapshots.map((s) => ({ merchantId: s.merchantId, id: s.snapshot.id })),
  );
  const writes = planWrites(snapshots, stored.get, input.fulfillment);
  for (const fields of writes.afterCapture) log("warn", "transaction.status_after_capture", fields);
  return applyResult(await runGroups(db.$client, planStatements(input, writes)));
}
