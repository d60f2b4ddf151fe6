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

/** Where a walk of the events list (newest first) stands: ids it showed without their operations, and its next page. */
interface ListWalk {
  listed: Set<string>;
  startAfter: string | undefined;
  done: boolean;
}

/**
 * Reads up to `pages` more pages of the events list for the wanted ids: those a page carries whole are verified (and
 * removed from `wanted`); those it shows without their transaction's operations exist and go to `walk.listed` (fetched
 * by id). A failing list ends the walk: it is an optimisation only, whatever it did not cover is fetched one by one.
 */
async function readListPages(
  client: SmartRouterClient,
  projectId: string,
  { wanted, results, walk }: { wanted: Set<string>; results: Map<string, Verification>; walk: ListWalk },
  pages: number,
) {
  try {
    for (let page = 0; page < pages && !walk.done && wanted.size > walk.listed.size; page++) {
      // Each event a page verifies is charged that page: one call, and whatever the pacer made it wait.
      const meter: PaceMeter = { calls: 0, waitedMs: 0 };
      const { events, hasMore } = await client.metered(meter).listEvents({ limit: LIST_PAGE, order: "desc", startAfter: walk.startAfter });
      const trace = traceOf("events_list", meter);
      for (const event of events.filter((e) => wanted.has(e.id))) {
        if (!completeListItem(event)) walk.listed.add(event.id);
        else if (wanted.delete(event.id)) results.set(event.id, { ...checkProject(event, projectId), trace });
      }
      const last = events.at(-1);
      walk.startAfter = last?.id;
      walk.done = !hasMore || !last;
    }
  } catch {
    walk.done = true;
  }
}

export type Judged = { verdict: "fetch" } | { verdict: "forged" } | { verdict: "wait"; error: SmartRouterError };

/**
 * What a sample of unlisted ids says of the others: `fetch` when Smart Router knows one (old genuine events, e.g. a
 * backlog after an outage: walk on and fetch); `forged` when none is known and at least one is unknown (each is asked
 * again once, then left to the event-log backstop, which treats `rejected` as open); `wait` only when no answer could
 * tell (our pacer refused, Smart Router failed): the others get that wait without a call, so a flood never spends the
 * merchant's quota one forged id at a time. An unknown beside a failure judges forged: waiting on it made a flood's
 * forged ids go round the parking five times over (chaos --flood: 0.159 calls per forged delivery).
 */
export function judgeSample(sample: readonly Verification[]): Judged {
  if (sample.length === 0 || sample.some((v) => v.kind === "verified" || v.kind === "rejected")) return { verdict: "fetch" };
  if (sample.some((v) => v.kind === "not_found")) return { verdict: "forged" };
  const inconclusive = sample.find((v) => v.kind === "retry");
  return inconclusive?.kind === "retry" ? { verdict: "wait", error: inconclusive.error } : { verdict: "forged" };
}

/** The unlisted ids a sample judged forged or left waiting, answered without a call. */
function withoutCalls(ids: readonly string[], judged: Judged): Verification[] {
  const untried = { calls: 0, waitedMs: 0 };
  return ids.map(
    (): Verification =>
      judged.verdict === "wait"
        ? { kind: "retry", error: judged.error, trace: traceOf("event", untried) }
        : { kind: "not_found", detail: UNLISTED, trace: traceOf("events_list", untried) },
  );
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
  const walk: ListWalk = { listed: new Set(), startAfter: undefined, done: !coalesced };
  const fetchInto = async (ids: readonly string[]) => {
    const verified = await mapConcurrent(ids, FETCH_CONCURRENCY, (eventId) => fetchOne(client, eventId, projectId));
    ids.forEach((eventId, index) => {
      results.set(eventId, verified[index] as Verification);
      wanted.delete(eventId);
    });
    return verified;
  };
  // The newest page first; then, of the ids it did not show, a sample decides whether the others are worth the calls.
  const pageBudget = Math.ceil(wanted.size / EVENTS_PER_LIST_PAGE_BUDGET);
  await readListPages(client, projectId, { wanted, results, walk }, 1);
  const unseen = [...wanted].filter((id) => !walk.listed.has(id));
  const sampleIds = coalesced && unseen.length > UNLISTED_SAMPLE ? unseen.slice(0, UNLISTED_SAMPLE) : [];
  const judged = judgeSample(await fetchInto(sampleIds));
  if (judged.verdict === "fetch") {
    // The walk's pages stay within one per EVENTS_PER_LIST_PAGE_BUDGET waiting events, and end once every id is found.
    await readListPages(client, projectId, { wanted, results, walk }, pageBudget - 1);
    await fetchInto([...wanted]);
    return results;
  }
  await fetchInto([...walk.listed].filter((id) => wanted.has(id)));
  const others = [...wanted];
  withoutCalls(others, judged).forEach((verification, index) => {
    results.set(others[index] as string, verification);
  });
  return results;
}
