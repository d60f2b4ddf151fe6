import { type SQL, sql } from "drizzle-orm";
import { insertJsonRows } from "../db/bulk";
import type { Database } from "../db/client";
import {
  events,
  type FetchBackOutcome,
  type FulfillmentAttemptError,
  fetchBacks,
  fulfillmentAttempts,
  transactionStatusChanges,
  transactions,
  webhookDeliveries,
} from "../db/schema";
import type { FetchBackTrace, Verification } from "../smart-router/fetch-back";
import type { TransactionWrite } from "./records";

/** A delivery as the edge queued it: what the timeline shows of it. */
export interface DeliveryRecord {
  merchantId: string;
  eventId: string;
  deliveryId: string;
  receivedAt: string;
}

/**
 * Records the deliveries of one queue batch, in one statement (a batch holds at most 100). A delivery is a duplicate when
 * its event is already in the inbox, or an earlier one of the same event is in this batch; so this must run before the
 * inbox write of the same D1 batch (applySnapshots runs `extra` first). A message retried or redelivered by the queue
 * carries the same delivery id and is recorded once.
 */
export function recordDeliveries(deliveries: readonly DeliveryRecord[]): SQL[] {
  if (deliveries.length === 0) return [];
  const seen = new Set<string>();
  const ordered = [...deliveries].sort((a, b) => a.receivedAt.localeCompare(b.receivedAt) || a.deliveryId.localeCompare(b.deliveryId));
  const rows = ordered.map((delivery) => {
    const key = `${delivery.merchantId}\u0000${delivery.eventId}`;
    const laterInBatch = seen.has(key);
    seen.add(key);
    return {
      merchant_id: delivery.merchantId,
      event_id: delivery.eventId,
      delivery_id: delivery.deliveryId,
      received_at: delivery.receivedAt,
      later_in_batch: laterInBatch ? 1 : 0,
    };
  });
  // Raw json_each, not insertJsonRows: `duplicate` is computed from a row value that is not a column of its own.
  return [
    sql`INSERT INTO ${webhookDeliveries} (merchant_id, event_id, delivery_id, received_at, duplicate)
      SELECT j.value ->> '$.merchant_id', j.value ->> '$.event_id', j.value ->> '$.delivery_id', j.value ->> '$.received_at',
        (j.value ->> '$.later_in_batch') = 1 OR EXISTS (
          SELECT 1 FROM ${events} AS e WHERE e.merchant_id = j.value ->> '$.merchant_id' AND e.id = j.value ->> '$.event_id')
      FROM json_each(${JSON.stringify(rows)}) AS j
      WHERE true ON CONFLICT (merchant_id, event_id, delivery_id) DO NOTHING`,
  ];
}

/** One fetch-back of a delivered event and what it answered. */
export interface FetchBackRecord {
  merchantId: string;
  eventId: string;
  outcome: FetchBackOutcome;
  /** Why it did not verify (the error or the rejection), null when it did. */
  detail: string | null;
  trace: FetchBackTrace;
}

/** The record of one event's fetch-back, or null when none was made (its merchant failed before any call). */
export function fetchBackRecord(merchantId: string, eventId: string, verification: Verification): FetchBackRecord | null {
  if (!verification.trace) return null;
  const detail =
    verification.kind === "retry"
      ? `${verification.error.kind}: ${verification.error.message}`
      : verification.kind === "verified"
        ? null
        : verification.detail;
  return { merchantId, eventId, outcome: verification.kind, detail, trace: verification.trace };
}

/** Records fetch-backs, one statement per 500. */
export function recordFetchBacks(records: readonly FetchBackRecord[]): SQL[] {
  return insertJsonRows(
    fetchBacks,
    records.map((record) => ({
      merchant_id: record.merchantId,
      event_id: record.eventId,
      at: record.trace.at,
      outcome: record.outcome,
      via: record.trace.via,
      api_calls: record.trace.apiCalls,
      pace_wait_ms: record.trace.paceWaitMs,
      detail: record.detail === null ? null : record.detail.slice(0, 300),
    })),
  );
}

/**
 * Records the status each write gave its record, when it changed it: must run after the compare-and-set upsert of the
 * same D1 batch, so it sees what was actually stored (a write that lost the race has another snapshot version, and a
 * write that kept the status adds nothing). `at` is the record's own `updated_at`, stamped by that upsert.
 */
export function recordStatusChanges(writes: readonly TransactionWrite[]): SQL[] {
  if (writes.length === 0) return [];
  const rows = JSON.stringify(
    writes.map((write) => ({
      merchant_id: write.merchantId,
      id: write.snapshot.id,
      version: write.version,
      read_at: write.source.kind === "read" ? write.source.readAt : null,
    })),
  );
  // json_each of row values (key and version), joined to what the upsert stored: not an id list.
  return [
    sql`INSERT INTO ${transactionStatusChanges} (merchant_id, transaction_id, at, from_status, to_status, event_id, event_name, read_at)
      SELECT merchant_id, id, updated_at, previous, status, last_event_id, last_event_name, read_at FROM (
        SELECT t.merchant_id, t.id, t.updated_at, t.status, t.last_event_id, t.last_event_name, j.value ->> '$.read_at' AS read_at,
          (SELECT h.to_status FROM ${transactionStatusChanges} AS h
            WHERE h.merchant_id = t.merchant_id AND h.transaction_id = t.id ORDER BY h.id DESC LIMIT 1) AS previous
        FROM json_each(${rows}) AS j
        JOIN ${transactions} AS t ON t.merchant_id = j.value ->> '$.merchant_id' AND t.id = j.value ->> '$.id'
          AND t.snapshot_version = j.value ->> '$.version'
      ) WHERE status IS NOT previous`,
  ];
}

/** What a fulfilment attempt ended with; `errorClass` is null when the merchant answered 2xx. */
export interface FulfillmentAttemptRecord {
  merchantId: string;
  transactionId: string;
  attempt: number;
  at: string;
  outcome: "delivered" | "failed";
  httpStatus: number | null;
  errorClass: FulfillmentAttemptError | null;
}

/** The insert that records one fulfilment attempt, to run in the same D1 batch as the outbox row's update. */
export function fulfillmentAttemptInsert(db: Database, record: FulfillmentAttemptRecord) {
  return db.insert(fulfillmentAttempts).values(record);
}
