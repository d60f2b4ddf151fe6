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
/** A list page costs one call: read at most one page per this many waiting events (≤ 0.1 calls per event). */
const EVENTS_PER_LIST_PAGE_BUDGET = 10;
/**
 * With many events waiting, this many of those the list did not show are fetched by id first: when all of them are
 * unknown to Smart Router the rest are taken for a flood of forged ids and not fetched one by one (each is asked again
 * once, then left to the event-log backstop, which applies any genuine one it finds); when one is known, the rest are
 * old genuine events (a backlog after an outage) and are fetched.
 */
export const UNLISTED_SAMPLE = 2;
const FETCH_CONCURRENCY = 6;

const FORGED = "event not found at Smart Router (forged or foreign delivery)";
/** An unlisted event skipped after a sample of its batch was all unknown: the backstop applies it should it be genuine. */
const UNLISTED = "not in Smart Router's recent event log and its batch looked forged (the event-log backstop applies it if genuine)";

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
 * Reads the newest pages of the events list for the wanted ids: those a page carries whole are verified (and removed
 * from `wanted`); answers the ids a page showed without their transaction's operations (they exist: fetched by id). The
 * first page always, further ones while the last one showed a wanted id, at most one page per
 * EVENTS_PER_LIST_PAGE_BUDGET waiting events. A failing list only means more single fetches.
 */
async function readListPages(client: SmartRouterClient, projectId: string, wanted: Set<string>, results: Map<string, Verification>) {
  const listed = new Set<string>();
  const maxPages = Math.ceil(wanted.size / EVENTS_PER_LIST_PAGE_BUDGET);
  let startAfter: string | undefined;
  try {
    for (let page = 0; page < maxPages && wanted.size > listed.size; page++) {
      // Each event a page verifies is charged that page: one call, and whatever the pacer made it wait.
      const meter: PaceMeter = { calls: 0, waitedMs: 0 };
      const { events, hasMore } = await client.metered(meter).listEvents({ limit: LIST_PAGE, order: "desc", startAfter });
      const trace = traceOf("events_list", meter);
      let shown = 0;
      for (const event of events.filter((e) => wanted.has(e.id))) {
        shown++;
        if (!completeListItem(event)) listed.add(event.id);
        else if (wanted.delete(event.id)) results.set(event.id, { ...checkProject(event, projectId), trace });
      }
      const last = events.at(-1);
      if (!hasMore || !last || shown === 0) break;
      startAfter = last.id;
    }
  } catch {
    // The list is an optimisation only: whatever it did not cover is fetched one by one.
  }
  return listed;
}

/**
 * The unseen ids after the sample's: fetched only when the sample found one Smart Router knows (old genuine events,
 * e.g. a backlog after an outage); all unknown, they are taken for forged (asked again once, UNLISTED); a sample that
 * could not tell (our pacer refused, Smart Router failed) hands its wait on to the rest without a call, so a flood
 * never spends the merchant's quota one forged id at a time.
 */
async function verifyRest(
  rest: readonly string[],
  sample: readonly Verification[],
  fetchAll: (ids: readonly string[]) => Promise<Verification[]>,
): Promise<Verification[]> {
  if (rest.length === 0 || sample.length === 0) return fetchAll(rest);
  if (sample.some((verification) => verification.kind === "verified" || verification.kind === "rejected")) return fetchAll(rest);
  const inconclusive = sample.find((verification) => verification.kind === "retry");
  const untried = { calls: 0, waitedMs: 0 };
  if (inconclusive?.kind === "retry")
    return rest.map(() => ({ kind: "retry", error: inconclusive.error, trace: traceOf("event", untried) }));
  return rest.map(() => ({ kind: "not_found", detail: UNLISTED, trace: traceOf("events_list", untried) }));
}

/**
 * Verifies events by fetching them back from Smart Router with the merchant's own credentials: the only proof a
 * webhook has. With many ids waiting, one `GET /events` page (100 events, newest first) verifies most of a burst in
 * one call, and a backlog is walked further back while pages keep showing ids; what the pages show without the
 * transaction's operations is fetched one by one, and so is what they do not show, unless a sample of it is all unknown
 * (UNLISTED_SAMPLE): then a flood of forged ids costs a few calls per batch, not one or two per id. A 404 means forged, foreign, or not
 * readable yet: the caller asks once more after a delay before calling it forged.
 */
export async function verifyEvents(
  client: SmartRouterClient,
  projectId: string,
  eventIds: readonly string[],
): Promise<Map<string, Verification>> {
  const results = new Map<string, Verification>();
  const wanted = new Set(eventIds);
  const coalesced = wanted.size >= COALESCE_THRESHOLD;
  const listed = coalesced ? await readListPages(client, projectId, wanted, results) : new Set<string>();

  // Ids a page showed exist: fetched. Of the others, a sample first when many wait (a flood of forged ids is unknown).
  const unseen = [...wanted].filter((id) => !listed.has(id));
  const sampled = coalesced && unseen.length > UNLISTED_SAMPLE ? UNLISTED_SAMPLE : unseen.length;
  const fetchAll = (ids: readonly string[]) => mapConcurrent(ids, FETCH_CONCURRENCY, (eventId) => fetchOne(client, eventId, projectId));
  const first = [...listed, ...unseen.slice(0, sampled)];
  const fetched = await fetchAll(first);
  const sample = fetched.slice(listed.size);
  const rest = unseen.slice(sampled);
  const restVerified = await verifyRest(rest, sample, fetchAll);
  [...first, ...rest].forEach((eventId, index) => {
    results.set(eventId, (index < fetched.length ? fetched[index] : restVerified[index - fetched.length]) as Verification);
  });
  return results;
}
