import { and, asc, eq, isNotNull, or } from "drizzle-orm";
import type { Database } from "../db/client";
import type { DeliveryRow, EventRow, FetchBackRow, FulfillmentAttemptRow, StatusChangeRow } from "../db/rows";
import { events, fetchBacks, fulfillmentAttempts, fulfillments, transactions, webhookDeliveries } from "../db/schema";
import { statusHistoryColumns, statusHistoryFrom } from "../db/status-history";
import type { ArchiveBucket } from "../retention/archive-format";
import { archivedObjectsOf, mergeHistory, readArchivedHistory } from "../retention/history";
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

/** A fetch-back on the timeline: a fetch_backs row, or one folded into its event's inbox row (no id of its own). */
type TimelineFetchBack = Omit<FetchBackRow, "id"> & { id: number | null };

/** The first delivery an inbox row records (the timeline fold, 0024), as its webhook_deliveries row would have been. */
function foldedDelivery(event: EventRow): DeliveryRow | null {
  if (event.firstDeliveryId === null) return null;
  const { merchantId, id: eventId, firstDeliveryId: deliveryId, firstReceivedAt: receivedAt } = event;
  return { merchantId, eventId, deliveryId, receivedAt, duplicate: false };
}

/** The fetch-back that settled an inbox row's event (the timeline fold, 0024), as its fetch_backs row would have been. */
function foldedFetchBack(event: EventRow): TimelineFetchBack | null {
  const {
    fetchBackAt: at,
    fetchBackOutcome: outcome,
    fetchBackVia: via,
    fetchBackApiCalls: apiCalls,
    fetchBackPaceWaitMs: paceWaitMs,
  } = event;
  if (at === null || outcome === null || via === null || apiCalls === null || paceWaitMs === null) return null;
  return {
    id: null,
    merchantId: event.merchantId,
    eventId: event.id,
    at,
    outcome,
    via,
    apiCalls,
    paceWaitMs,
    detail: event.fetchBackDetail,
  };
}

function fetchBackSummary(row: TimelineFetchBack, label: string): string {
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
 * at most TIMELINE_ROWS_PER_KIND of each, its events holding a folded first delivery or fetch-back, and the archive
 * objects holding the rest of its history (retention/history.ts).
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
    // The record's status history (0030; 0035 merged the table's last rows into it).
    db
      .select(statusHistoryColumns)
      .from(statusHistoryFrom)
      .where(and(eq(transactions.merchantId, merchantId), eq(transactions.id, transactionId)))
      .limit(TIMELINE_ROWS_PER_KIND),
    db
      .select()
      .from(fulfillmentAttempts)
      .where(and(eq(fulfillmentAttempts.merchantId, merchantId), eq(fulfillmentAttempts.transactionId, transactionId)))
      .orderBy(asc(fulfillmentAttempts.id))
      .limit(TIMELINE_ROWS_PER_KIND),
    db
      .select()
      .from(events)
      .where(and(ofTransaction, or(isNotNull(events.firstDeliveryId), isNotNull(events.fetchBackAt))))
      .orderBy(asc(events.firstReceivedAt), asc(events.id))
      .limit(TIMELINE_ROWS_PER_KIND),
    archivedObjectsOf({ db, merchantId, transactionId }),
    // The attempt that delivered the notification, recorded by the outbox row since 0028 (`deliveredAttempt`).
    db
      .select({ attempt: fulfillments.attempts, at: fulfillments.deliveredAt, httpStatus: fulfillments.deliveredHttpStatus })
      .from(fulfillments)
      .where(and(eq(fulfillments.merchantId, merchantId), eq(fulfillments.transactionId, transactionId))),
  ] as const;
}

/**
 * The delivering attempt an outbox row records (0028) as a timeline attempt row; none while undelivered, or when the row
 * was delivered before 0028 (its attempt is a `fulfillment_attempts` row). Its id sorts it after rows of the same instant.
 */
function deliveredAttempt(
  key: { merchantId: string; transactionId: string },
  row: { attempt: number; at: string | null; httpStatus: number | null } | undefined,
): FulfillmentAttemptRow[] {
  if (!row || row.at === null || row.httpStatus === null) return [];
  const { attempt, at, httpStatus } = row;
  return [{ ...key, id: Number.MAX_SAFE_INTEGER, attempt, at, outcome: "delivered", httpStatus, errorClass: null }];
}

const compare = (a: string | number, b: string | number) => (a < b ? -1 : a > b ? 1 : 0);

/** Fetch-backs oldest first; at the same instant rows in the order they were written, folded ones after them, by event. */
const byFetchBackOrder = (a: TimelineFetchBack, b: TimelineFetchBack) =>
  compare(a.at, b.at) || compare(a.id ?? Number.MAX_SAFE_INTEGER, b.id ?? Number.MAX_SAFE_INTEGER) || compare(a.eventId, b.eventId);

/** What the fold put in inbox rows (live and archived alike), as the timeline's deliveries and fetch-backs. */
function foldedRows(inboxRows: readonly EventRow[]) {
  return {
    deliveries: inboxRows.flatMap((event) => {
      const delivery = foldedDelivery(event);
      return delivery ? [{ delivery, eventName: event.name }] : [];
    }),
    fetched: inboxRows.flatMap((event) => {
      const fetchBack = foldedFetchBack(event);
      return fetchBack ? [{ fetchBack, eventName: event.name }] : [];
    }),
  };
}

/**
 * The timeline's rows from D1 and from the archive objects of the transaction's history (read back as `…/events` and
 * `…/operations` read theirs), oldest first, at most TIMELINE_ROWS_PER_KIND of each kind. A delivery is one per
 * (event, delivery id) whichever side holds it; the other kinds are numbered by D1's rowid, which a row written after an
 * archive may reuse, so they are never matched by id: the finish that archives a row deletes it in the same D1 batch.
 */
async function timelineRows({ db, archive, merchantId, transactionId }: TimelineQuery) {
  const [found, deliveries, fetched, changes, attemptRows, inboxRows, objects, outbox] = await db.batch(
    timelineReads({ db, merchantId, transactionId }),
  );
  if (found.length === 0) throw transactionNotFound(transactionId);
  const attempts = [...attemptRows, ...deliveredAttempt({ merchantId, transactionId }, outbox[0])];
  const keys = objects.map((object) => object.key);
  const archived = await readArchivedHistory({ bucket: archive, keys, merchantId, transactionId });
  const nameOf = new Map(archived.events.map((event) => [event.id, event.name]));
  const [archivedFold, liveFold] = [foldedRows(archived.events), foldedRows(inboxRows)];
  const keyed = (delivery: DeliveryRow, eventName: string | null) => ({
    id: `${delivery.eventId} ${delivery.deliveryId}`,
    delivery,
    eventName,
  });
  const oldest = <Row>(rows: Row[], order: (a: Row, b: Row) => number) => rows.sort(order).slice(0, TIMELINE_ROWS_PER_KIND);
  return {
    deliveries: mergeHistory(
      [
        ...archived.deliveries.map((delivery) => keyed(delivery, nameOf.get(delivery.eventId) ?? null)),
        ...archivedFold.deliveries.map((row) => keyed(row.delivery, row.eventName)),
      ],
      [...deliveries, ...liveFold.deliveries].map((row) => keyed(row.delivery, row.eventName)),
      (a, b) => compare(a.delivery.receivedAt, b.delivery.receivedAt) || compare(a.delivery.deliveryId, b.delivery.deliveryId),
    ).slice(0, TIMELINE_ROWS_PER_KIND),
    fetched: oldest<{ fetchBack: TimelineFetchBack; eventName: string | null }>(
      [
        ...archived.fetchBacks.map((fetchBack) => ({ fetchBack, eventName: nameOf.get(fetchBack.eventId) ?? null })),
        ...archivedFold.fetched,
        ...fetched,
        ...liveFold.fetched,
      ],
      (a, b) => byFetchBackOrder(a.fetchBack, b.fetchBack),
    ),
    changes: oldest([...archived.statusChanges, ...changes], (a, b) => compare(a.at, b.at) || compare(a.id, b.id)),
    attempts: oldest([...archived.fulfillmentAttempts, ...attempts], (a, b) => compare(a.at, b.at) || compare(a.id, b.id)),
  };
}

/** What a timeline read takes: D1, the archive, and whose transaction it is. */
interface TimelineQuery {
  db: Database;
  archive: Pick<ArchiveBucket, "get">;
  merchantId: string;
  transactionId: string;
}

/**
 * A payment's timeline, oldest first: every webhook delivery of its events (duplicates marked), each fetch-back (its
 * outcome, the calls it took and the pacer's wait), each status change with the event or read that made it, and each
 * fulfilment attempt with the merchant's HTTP status or an error class (never its body). Entries at the same instant
 * keep that order of kinds. A transaction the merchant does not have is a 404, another merchant's included. A
 * fetch-back shows once its event is verified: until then nothing names the event's transaction. An archived payment's
 * timeline is read back from its history's archive objects.
 */
export async function transactionTimeline({ merchant, ...query }: Omit<TimelineQuery, "merchantId"> & { merchant: MerchantScope }) {
  const { deliveries, fetched, changes, attempts } = await timelineRows({ ...query, merchantId: merchant.id });
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
