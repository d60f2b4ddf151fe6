import { type SQL, sql } from "drizzle-orm";
import { insertJsonRows } from "../db/bulk";
import type { Database } from "../db/client";
import {
  events,
  type FetchBackOutcome,
  type FulfillmentAttemptError,
  fetchBacks,
  fulfillmentAttempts,
  webhookDeliveries,
} from "../db/schema";
import type { FetchBackTrace, Verification } from "../smart-router/fetch-back";

/** A delivery as the edge queued it: what the timeline shows of it. */
export interface DeliveryRecord {
  merchantId: string;
  eventId: string;
  deliveryId: string;
  receivedAt: string;
}

/** Arrival order of deliveries (received, then delivery id): the first of an event in a batch is the one its inbox row records. */
export const byArrival = (a: { receivedAt: string; deliveryId: string }, b: { receivedAt: string; deliveryId: string }) =>
  a.receivedAt.localeCompare(b.receivedAt) || a.deliveryId.localeCompare(b.deliveryId);

/**
 * Records the duplicate deliveries of one queue batch, in one statement (a batch holds at most 100). The timeline fold
 * (0024): an event's first delivery is a column of its inbox row (`first_delivery_id`, written by the inbox write with
 * the batch's earliest delivery of a new event), so only a delivery of an event already in the inbox, or a later one of
 * the same event in this batch, gets a row here, always a duplicate. This must run before the inbox write of the same D1
 * batch (applySnapshots runs `extra` first). A message retried or redelivered by the queue carries the same delivery id
 * and is recorded once: by the key here, or because it is the inbox row's own first delivery.
 */
export function recordDeliveries(deliveries: readonly DeliveryRecord[]): SQL[] {
  if (deliveries.length === 0) return [];
  const seen = new Set<string>();
  const rows = [...deliveries].sort(byArrival).map((delivery) => {
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
  // Raw json_each, not insertJsonRows: whether a row is written depends on the inbox row, joined to each delivery.
  return [
    sql`INSERT INTO ${webhookDeliveries} (merchant_id, event_id, delivery_id, received_at, duplicate)
      SELECT j.value ->> '$.merchant_id', j.value ->> '$.event_id', j.value ->> '$.delivery_id', j.value ->> '$.received_at', 1
      FROM json_each(${JSON.stringify(rows)}) AS j
      LEFT JOIN ${events} AS e ON e.merchant_id = j.value ->> '$.merchant_id' AND e.id = j.value ->> '$.event_id'
      WHERE (e.id IS NOT NULL OR (j.value ->> '$.later_in_batch') = 1) AND e.first_delivery_id IS NOT (j.value ->> '$.delivery_id')
      ON CONFLICT (merchant_id, event_id, delivery_id) DO NOTHING`,
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

/** A fetch-back as the columns of a fetch_backs row; `fetch_back_*` columns of the inbox row hold the same (the fold). */
function fetchBackRow(record: FetchBackRecord) {
  return {
    merchant_id: record.merchantId,
    event_id: record.eventId,
    at: record.trace.at,
    outcome: record.outcome,
    via: record.trace.via,
    api_calls: record.trace.apiCalls,
    pace_wait_ms: record.trace.paceWaitMs,
    detail: record.detail === null ? null : record.detail.slice(0, 300),
  };
}

/** The inbox row's columns of the timeline fold: its first delivery and the fetch-back that settled it (either may be null). */
export function foldedColumns(firstDeliveryId: string | null | undefined, fetchBack: FetchBackRecord | null | undefined) {
  const row = fetchBack ? fetchBackRow(fetchBack) : null;
  return {
    first_delivery_id: firstDeliveryId ?? null,
    fetch_back_at: row?.at ?? null,
    fetch_back_outcome: row?.outcome ?? null,
    fetch_back_via: row?.via ?? null,
    fetch_back_api_calls: row?.api_calls ?? null,
    fetch_back_pace_wait_ms: row?.pace_wait_ms ?? null,
    fetch_back_detail: row?.detail ?? null,
  };
}

/** The inbox's columns of the fold, in `foldedColumns`' order: the one list the inbox writes name. */
export const FOLDED_COLUMNS = Object.keys(foldedColumns(null, null));

/** Records fetch-backs that settled nothing (retried, asked again later), one statement per 500. */
export function recordFetchBacks(records: readonly FetchBackRecord[]): SQL[] {
  return insertJsonRows(fetchBacks, records.map(fetchBackRow));
}

/**
 * The fetch-backs the inbox write was to fold (they settled their event) but whose row kept another one, because another
 * consumer settled the event first: they get a fetch_backs row, so every fetch-back made is on the timeline. Must run
 * after the inbox writes of the same D1 batch.
 */
export function recordUnfoldedFetchBacks(records: readonly FetchBackRecord[]): SQL[] {
  return insertJsonRows(
    fetchBacks,
    records.map(fetchBackRow),
    sql`AND NOT EXISTS (SELECT 1 FROM ${events} AS e WHERE e.merchant_id = value ->> '$.merchant_id' AND e.id = value ->> '$.event_id'
      AND e.fetch_back_at = value ->> '$.at' AND e.fetch_back_outcome = value ->> '$.outcome' AND e.fetch_back_via = value ->> '$.via'
      AND e.fetch_back_api_calls = value ->> '$.api_calls' AND e.fetch_back_pace_wait_ms = value ->> '$.pace_wait_ms')`,
  );
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
