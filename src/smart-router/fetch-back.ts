import { mapConcurrent } from "../lib/concurrency";
import type { PaceMeter, SmartRouterClient, TransactionRead } from "./client";
import { SmartRouterError } from "./errors";
import type { SmartRouterEvent } from "./schemas";

type VerificationOutcome =
  /** `read`: the event's transaction came without its operations, so it was read from the API instead (with its time). */
  | { kind: "verified"; event: SmartRouterEvent; read?: TransactionRead }
  /** Smart Router does not know the event (404): forged, foreign, or not readable yet (read-after-write lag). */
  | { kind: "not_found"; detail: string }
  | { kind: "rejected"; detail: string }
  | { kind: "retry"; error: SmartRouterError };

/** What fetching an event back showed, and how its calls went (`trace`, set on every answer of `verifyEvents`). */
export type Verification = VerificationOutcome & { trace?: FetchBackTrace };

/** `events_list`: a `GET /events` page stood for the event; `event`: `GET /events/{id}`; then the transaction read too. */
export const FETCH_BACK_VIAS = ["events_list", "event", "event_and_transaction"] as const;
export type FetchBackVia = (typeof FETCH_BACK_VIAS)[number];

/** How one event's fetch-back went, for its payment's timeline. */
export interface FetchBackTrace {
  via: FetchBackVia;
  /** When the last of its calls answered (ISO 8601 UTC). */
  at: string;
  apiCalls: number;
  /** How long our own pacer held its calls back (client.ts `PaceMeter`). */
  paceWaitMs: number;
}

const traceOf = (via: FetchBackVia, meter: PaceMeter): FetchBackTrace => ({
  via,
  at: new Date().toISOString(),
  apiCalls: meter.calls,
  paceWaitMs: meter.waitedMs,
});

/** From this many events waiting for one project, reading the newest events list first saves calls. */
export const COALESCE_THRESHOLD = 5;
const LIST_PAGE = 100;
/** A list page costs one call: read at most one page per this many waiting events (≤ 0.1 calls per event), and at least 3. */
const EVENTS_PER_LIST_PAGE_BUDGET = 10;
const MIN_LIST_PAGES = 3;
const FETCH_CONCURRENCY = 6;

const FORGED = "event not found at Smart Router (forged or foreign delivery)";

function asRetry(error: unknown): Verification {
  if (error instanceof SmartRouterError) return { kind: "retry", error };
  return { kind: "retry", error: new SmartRouterError("network", error instanceof Error ? error.message : String(error)) };
}

function checkProject(event: SmartRouterEvent, projectId: string): Verification {
  if (event.project_id && event.project_id !== projectId) return { kind: "rejected", detail: "event belongs to another project" };
  return { kind: "verified", event };
}

/**
 * Whether a list item can stand for the event: only with its transaction's whole operation history, since smart-router.md
 * promises that of `GET /events/{id}` but not of the list (an item may carry `operations: null`, or no `data`).
 */
function completeListItem(event: SmartRouterEvent): boolean {
  return Array.isArray(event.data?.transaction?.operations);
}

/** Fetches one event; a transaction event without its operations is completed by reading the transaction itself. */
async function fetchOne(client: SmartRouterClient, eventId: string, projectId: string): Promise<Verification> {
  const meter: PaceMeter = { calls: 0, waitedMs: 0 };
  const metered = client.metered(meter);
  let via: FetchBackVia = "event";
  let verification: Verification;
  try {
    const event = await metered.fetchEvent(eventId);
    const checked: Verification =
      event.id === eventId ? checkProject(event, projectId) : { kind: "rejected", detail: "Smart Router answered another event" };
    const transaction = event.data?.transaction;
    if (checked.kind !== "verified" || !transaction || Array.isArray(transaction.operations)) verification = checked;
    else {
      via = "event_and_transaction";
      verification = { kind: "verified", event, read: await metered.fetchTransaction(transaction.id) };
    }
  } catch (error) {
    verification = error instanceof SmartRouterError && error.kind === "not_found" ? { kind: "not_found", detail: FORGED } : asRetry(error);
  }
  return { ...verification, trace: traceOf(via, meter) };
}

/**
 * Verifies events by fetching them back from Smart Router with the merchant's own credentials: the only proof a
 * webhook has. With many ids waiting, one `GET /events` page (100 events, newest first) verifies most of a burst in
 * one call, and a backlog is walked further back while that stays under 0.1 calls per waiting event; whatever the pages
 * do not cover (or cover without the transaction's operations) is fetched one by one. A 404 on the single fetch means
 * forged, foreign, or not readable yet: the caller asks once more after a delay before calling it forged.
 */
export async function verifyEvents(
  client: SmartRouterClient,
  projectId: string,
  eventIds: readonly string[],
): Promise<Map<string, Verification>> {
  const results = new Map<string, Verification>();
  const wanted = new Set(eventIds);

  if (wanted.size >= COALESCE_THRESHOLD) {
    let startAfter: string | undefined;
    try {
      const maxPages = Math.max(MIN_LIST_PAGES, Math.ceil(wanted.size / EVENTS_PER_LIST_PAGE_BUDGET));
      for (let page = 0; page < maxPages && wanted.size > 0; page++) {
        // Each event a page verifies is charged that page: one call, and whatever the pacer made it wait.
        const meter: PaceMeter = { calls: 0, waitedMs: 0 };
        const { events, hasMore } = await client.metered(meter).listEvents({ limit: LIST_PAGE, order: "desc", startAfter });
        const trace = traceOf("events_list", meter);
        for (const event of events) {
          if (completeListItem(event) && wanted.delete(event.id)) results.set(event.id, { ...checkProject(event, projectId), trace });
        }
        const last = events.at(-1);
        if (!hasMore || !last) break;
        startAfter = last.id;
      }
    } catch {
      // The list is an optimisation only: whatever it did not cover is fetched one by one below.
    }
  }

  const remaining = [...wanted];
  const single = await mapConcurrent(remaining, FETCH_CONCURRENCY, (eventId) => fetchOne(client, eventId, projectId));
  remaining.forEach((eventId, index) => {
    results.set(eventId, single[index] as Verification);
  });
  return results;
}
