import { and, asc, eq } from "drizzle-orm";
import type { Database } from "../db/client";
import type { FetchBackRow, FulfillmentAttemptRow, StatusChangeRow } from "../db/rows";
import { events, fetchBacks, fulfillmentAttempts, transactionStatusChanges, webhookDeliveries } from "../db/schema";
import { type MerchantScope, transactionNotFound, transactionOfMerchant } from "../transactions/queries";

/** Rows read per kind: a payment has a handful of each; past this many the oldest are shown (one bounded read per kind). */
export const TIMELINE_ROWS_PER_KIND = 500;

/** The kinds of timeline entries, in the order entries at the same instant are listed. */
export const TIMELINE_KINDS = ["delivery", "fetch_back", "state_change", "fulfillment_attempt"] as const;

const eventLabel = (eventId: string, name: string | null) => (name ? `${eventId} (${name})` : eventId);

const VIA_WORDS: Record<string, string> = {
  events_list: "one GET /events page",
  event: "GET /events/{id}",
  event_and_transaction: "GET /events/{id}, then the transaction (the event came without its operations)",
};

function fetchBackSummary(row: FetchBackRow, label: string): string {
  const how = `${VIA_WORDS[row.via] ?? row.via}, ${row.apiCalls} call${row.apiCalls === 1 ? "" : "s"}, ${row.paceWaitMs} ms at our pacer`;
  if (row.outcome === "verified") return `Fetched back ${label} from Smart Router: verified (${how}).`;
  if (row.outcome === "not_found")
    return `Fetched back ${label}: Smart Router does not know it (yet); asked again later, then called forged.`;
  if (row.outcome === "rejected") return `Fetched back ${label}: rejected, ${row.detail ?? "not this project's event"}.`;
  // No call went out: our pacer (or the open circuit breaker) said "not yet", and the fetch-back goes out after the wait.
  if (row.apiCalls === 0 && row.paceWaitMs > 0)
    return `Fetch-back of ${label} postponed ${row.paceWaitMs} ms by our pacer; it goes out then.`;
  return `Fetch-back of ${label} failed (${row.detail ?? "no answer"}; ${how}); it is retried.`;
}

function stateChangeSummary(row: StatusChangeRow): string {
  const change = row.fromStatus === null ? `Status ${row.toStatus} (first seen)` : `Status ${row.fromStatus} → ${row.toStatus}`;
  const cause = row.eventId
    ? `event ${eventLabel(row.eventId, row.eventName)}`
    : "an API read of the transaction (batch, reconciliation, or an event without its operations)";
  return `${change}, by ${cause}.`;
}

const ERROR_WORDS: Record<string, string> = {
  timeout: "timed out",
  network: "network error",
  not_configured: "no fulfillment_url configured",
  url_not_allowed: "fulfillment_url not allowed",
  record_missing: "transaction record missing",
};

function attemptSummary(row: FulfillmentAttemptRow): string {
  const head = `Fulfilment notification, attempt ${row.attempt}`;
  if (row.outcome === "delivered") return `${head}: delivered (the merchant answered ${row.httpStatus}).`;
  if (row.errorClass === "redirect") return `${head}: the merchant answered ${row.httpStatus}, a redirect, which is not followed; retried.`;
  if (row.errorClass === "http_status") return `${head}: the merchant answered ${row.httpStatus}; retried.`;
  return `${head}: ${ERROR_WORDS[row.errorClass ?? ""] ?? row.errorClass ?? "failed"}; retried.`;
}

const KIND_ORDER = new Map<string, number>(TIMELINE_KINDS.map((kind, index) => [kind, index]));

/**
 * The reads of a timeline, one D1 batch: the transaction (none: a 404), its events by the inbox's (merchant, transaction)
 * index with their deliveries and fetch-backs by event, its status changes and its fulfilment attempts, oldest first,
 * at most TIMELINE_ROWS_PER_KIND of each.
 */
export function timelineReads({ db, merchantId, transactionId }: { db: Database; merchantId: string; transactionId: string }) {
  const ofTransaction = and(eq(events.merchantId, merchantId), eq(events.transactionId, transactionId));
  // CROSS JOIN keeps the transaction's events the outer loop in SQLite: a plain join lets the planner walk every delivery
  // of the merchant in time order for the ORDER BY (query-plan.test.ts in test/integration/console-api caught it).
  return [
    transactionOfMerchant({ db, merchantId, transactionId }),
    db
      .select({ delivery: webhookDeliveries, eventName: events.name })
      .from(events)
      .crossJoin(webhookDeliveries)
      .where(and(ofTransaction, eq(webhookDeliveries.merchantId, events.merchantId), eq(webhookDeliveries.eventId, events.id)))
      .orderBy(asc(webhookDeliveries.receivedAt), asc(webhookDeliveries.deliveryId))
      .limit(TIMELINE_ROWS_PER_KIND),
    db
      .select({ fetchBack: fetchBacks, eventName: events.name })
      .from(events)
      .crossJoin(fetchBacks)
      .where(and(ofTransaction, eq(fetchBacks.merchantId, events.merchantId), eq(fetchBacks.eventId, events.id)))
      .orderBy(asc(fetchBacks.at), asc(fetchBacks.id))
      .limit(TIMELINE_ROWS_PER_KIND),
    db
      .select()
      .from(transactionStatusChanges)
      .where(and(eq(transactionStatusChanges.merchantId, merchantId), eq(transactionStatusChanges.transactionId, transactionId)))
      .orderBy(asc(transactionStatusChanges.id))
      .limit(TIMELINE_ROWS_PER_KIND),
    db
      .select()
      .from(fulfillmentAttempts)
      .where(and(eq(fulfillmentAttempts.merchantId, merchantId), eq(fulfillmentAttempts.transactionId, transactionId)))
      .orderBy(asc(fulfillmentAttempts.id))
      .limit(TIMELINE_ROWS_PER_KIND),
  ] as const;
}

/**
 * A payment's timeline, oldest first: every webhook delivery of its events (duplicates marked), each fetch-back (its
 * outcome, the calls it took and the pacer's wait), each status change with the event or read that made it, and each
 * fulfilment attempt with the merchant's HTTP status or an error class (never its body). Entries at the same instant
 * keep that order of kinds. A transaction the merchant does not have is a 404, another merchant's included. A
 * fetch-back shows once its event is verified: until then nothing names the event's transaction.
 */
export async function transactionTimeline({
  db,
  merchant,
  transactionId,
}: {
  db: Database;
  merchant: MerchantScope;
  transactionId: string;
}) {
  const [found, deliveries, fetched, changes, attempts] = await db.batch(timelineReads({ db, merchantId: merchant.id, transactionId }));
  if (found.length === 0) throw transactionNotFound(transactionId);

  const entries = [
    ...deliveries.map(({ delivery, eventName }, seq) => ({
      seq,
      at: delivery.receivedAt,
      kind: "delivery" as const,
      summary: delivery.duplicate
        ? `Webhook for ${eventLabel(delivery.eventId, eventName)} received again: a duplicate, the event was already in the inbox.`
        : `Webhook for ${eventLabel(delivery.eventId, eventName)} received.`,
      detail: { event_id: delivery.eventId, event_name: eventName, delivery_id: delivery.deliveryId, duplicate: delivery.duplicate },
    })),
    ...fetched.map(({ fetchBack, eventName }, seq) => ({
      seq,
      at: fetchBack.at,
      kind: "fetch_back" as const,
      summary: fetchBackSummary(fetchBack, eventLabel(fetchBack.eventId, eventName)),
      detail: {
        event_id: fetchBack.eventId,
        outcome: fetchBack.outcome,
        via: fetchBack.via,
        api_calls: fetchBack.apiCalls,
        pace_wait_ms: fetchBack.paceWaitMs,
        error: fetchBack.detail,
      },
    })),
    ...changes.map((change, seq) => ({
      seq,
      at: change.at,
      kind: "state_change" as const,
      summary: stateChangeSummary(change),
      detail: {
        from: change.fromStatus,
        to: change.toStatus,
        cause: change.eventId
          ? { kind: "event" as const, event_id: change.eventId, event_name: change.eventName }
          : { kind: "read" as const, read_at: change.readAt },
      },
    })),
    ...attempts.map((attempt, seq) => ({
      seq,
      at: attempt.at,
      kind: "fulfillment_attempt" as const,
      summary: attemptSummary(attempt),
      detail: { attempt: attempt.attempt, outcome: attempt.outcome, http_status: attempt.httpStatus, error_class: attempt.errorClass },
    })),
  ];
  entries.sort((a, b) => a.at.localeCompare(b.at) || (KIND_ORDER.get(a.kind) ?? 0) - (KIND_ORDER.get(b.kind) ?? 0) || a.seq - b.seq);
  return { timeline: entries.map(({ seq: _seq, ...entry }) => entry) };
}
