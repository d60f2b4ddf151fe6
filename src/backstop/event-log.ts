import { and, eq, isNull, sql } from "drizzle-orm";
import type { BatchStatement } from "../db/bulk";
import type { Database } from "../db/client";
import { safeErrorMessage } from "../db/errors";
import { servedHere } from "../db/fence";
import type { MerchantRow } from "../db/rows";
import { eventLogCursors, merchants } from "../db/schema";
import { redriveDeadLetters } from "../dead-letters/redrive";
import { fulfillmentStatusFor } from "../fulfillment/policy";
import { log } from "../lib/log";
import { smartRouterFor } from "../merchants/smart-router";
import { BATCH_UNIT_RETRY, policyDelaySeconds } from "../queue/backoff";
import type { BatchLaneInput } from "../queue/consumer";
import { type EventLogMessage, QUEUES } from "../queue/messages";
import { sendAll } from "../queue/send";
import { archivedTransactions } from "../retention/history";
import type { SmartRouterClient } from "../smart-router/client";
import { SmartRouterError } from "../smart-router/errors";
import { verifyEvents } from "../smart-router/fetch-back";
import type { SmartRouterEvent } from "../smart-router/schemas";
import { applySnapshots, type VerifiedSnapshot } from "../transactions/apply";
import { settledEvents } from "../transactions/inbox";
import { loadStoredStates } from "../transactions/records";
import { snapshotVersion } from "../transactions/state-machine";
import { sendLaneNudges } from "../transactions/stream";
import { snapshotOfVerifiedEvent } from "../transactions/verified-snapshot";

const PAGE = 100;
/**
 * Pages of 100 events per merchant per walk: a backlog of 1,000 events a run per merchant, so one merchant's backlog
 * never holds up another's walk (each merchant gets its own message every run) and a walk ends after this many pages.
 */
const PAGES_PER_WALK = 10;
/** A first walk looks back this far before the merchant's registration, for the skew between our clock and theirs. */
const REGISTRATION_MARGIN_MS = 5 * 60_000;
/** Webhook dead letters younger than this are redriven by themselves once Smart Router answers the merchant again. */
const AUTO_REDRIVE_MS = 7 * 24 * 3600_000;

/** The Cron Trigger's part: one walk message per merchant served here whose key Smart Router does not refuse. */
export async function startEventLogWalks({ db, queue, now }: { db: Database; queue: Queue; now: number }): Promise<number> {
  const active = await db
    .select({ id: merchants.id })
    .from(merchants)
    .where(and(isNull(merchants.smartRouterKeyRefusedAt), servedHere(merchants.id)));
  const runAt = new Date(now).toISOString();
  await sendAll(
    queue,
    active.map((row): EventLogMessage => ({ v: 1, kind: "event_log", merchant_id: row.id, run_at: runAt })),
  );
  return active.length;
}

/**
 * The events after the watermark, oldest first, at most PAGES_PER_WALK pages. Without a watermark (the project had no
 * event at registration, or registration could not ask), from the project's first event on, leaving out those fired
 * before the merchant was registered (older history is a `sync` batch's job): a long history costs one list call per
 * 100 events until the walk has caught up, 1,000 events a run.
 */
async function readForward(client: SmartRouterClient, watermark: string | null, since: number) {
  const events: SmartRouterEvent[] = [];
  let walked = 0;
  let after = watermark ?? undefined;
  let lastFiredAt: string | null = null;
  const position = () => (after === undefined || after === watermark ? null : { id: after, firedAt: lastFiredAt });
  for (let page = 0; page < PAGES_PER_WALK; page++) {
    let listed: Awaited<ReturnType<SmartRouterClient["listEvents"]>>;
    try {
      listed = await client.listEvents({ limit: PAGE, order: "asc", startAfter: after });
    } catch (error) {
      // Pages already read are kept (the walk commits them); with none, the error is the walk's.
      if (page === 0) throw error;
      return { events, last: position(), walked, stoppedBy: error };
    }
    const { events: batch, hasMore } = listed;
    walked += batch.length;
    events.push(...batch.filter((event) => watermark !== null || Date.parse(event.fired_at) >= since));
    const last = batch.at(-1);
    if (!last) break;
    after = last.id;
    lastFiredAt = last.fired_at;
    if (!hasMore) break;
  }
  return { events, last: position(), walked, stoppedBy: null };
}

/**
 * The event-log backstop for one merchant: walks `GET /events` forward from the stored watermark in the batch lane and
 * applies every event no webhook brought (dropped, dead-lettered, never sent, or not found at first), through the same
 * compare-and-set as webhooks. List items that carry the whole transaction are used as they are (the list is read with
 * the merchant's own credentials: as authentic as a fetch-back); the rest are fetched one by one. The watermark moves in
 * the same D1 batch as the events it covers, with compare-and-set on its old value, so it only ever passes what was
 * committed and a crash at any point means the next walk does the same work again, settled events costing nothing.
 */
export async function walkEventLog({ env, db, config, work }: BatchLaneInput<EventLogMessage>): Promise<void> {
  const merchant = await db.select().from(merchants).where(eq(merchants.id, work.merchant_id)).get();
  if (!merchant || merchant.smartRouterKeyRefusedAt) return;
  const cursor = await db.select().from(eventLogCursors).where(eq(eventLogCursors.merchantId, merchant.id)).get();
  let calls = 0;
  const client = await smartRouterFor(env, config, merchant, "batch", () => {
    calls += 1;
  });
  const watermark = cursor?.watermarkEventId ?? null;
  let read: Awaited<ReturnType<typeof readForward>>;
  try {
    read = await readForward(client, watermark, Date.parse(merchant.createdAt) - REGISTRATION_MARGIN_MS);
  } catch (error) {
    if (watermark && error instanceof SmartRouterError && error.kind === "validation") {
      // Smart Router no longer knows the watermark as a cursor (its log expired): start again from the newest events.
      log("warn", "event_log.watermark_unknown", { merchant_id: merchant.id, watermark });
      await saveCursor(db, merchant.id, watermark, null, { calls, walked: 0, error: "watermark unknown to Smart Router; walking back" });
      return;
    }
    await saveCursor(db, merchant.id, watermark, watermark, { calls, walked: 0, error: safeErrorMessage(error) }).catch(() => undefined);
    throw error;
  }

  const { events } = read;
  const { snapshots: found, covered } = await verifiedSnapshots(db, client, merchant, events);
  const snapshots = await withoutArchivedHistory(db, found);
  // The watermark moves to the last event covered; with every event covered, to the last one listed (older ones the
  // first walk left out included).
  const lastCovered = covered.at(-1);
  const to = covered.length === events.length ? read.last : lastCovered ? { id: lastCovered.id, firedAt: lastCovered.fired_at } : null;
  const walked = covered.length === events.length ? read.walked : covered.length;
  const cursorUpdate = to ? cursorStatement(merchant.id, watermark, to, { calls, walked }) : null;
  const applied = await applySnapshots({
    db,
    snapshots,
    extra: cursorUpdate ? [cursorUpdate] : [],
    fulfillment: (_merchantId, captured) => fulfillmentStatusFor(merchant, captured),
    now: new Date().toISOString(),
  });
  if (!cursorUpdate) await saveCursor(db, merchant.id, watermark, watermark, { calls, walked: 0, error: null });
  await sendAll(env.FULFILLMENTS, applied.newFulfillments);
  await sendLaneNudges(env.ENDPOINT_MESSAGES, applied.endpointLanes);
  log("info", "event_log.walked", { merchant_id: merchant.id, events: walked, applied: applied.applied, api_calls: calls });
  // Smart Router answers this merchant again: its recent webhook dead letters can go through now.
  const redriven = await redriveDeadLetters({
    db,
    env,
    selection: { merchant: merchant.id, queue: QUEUES.webhooks, since: new Date(Date.now() - AUTO_REDRIVE_MS).toISOString() },
  });
  if (redriven.redriven.length > 0) log("info", "event_log.redrove", { merchant_id: merchant.id, dead_letters: redriven.redriven.length });
  // What was read is committed; the rest of this walk is retried by the caller like a walk that failed at once.
  if (read.stoppedBy) throw read.stoppedBy;
}

/**
 * What the walk found, as verified snapshots with their inbox rows, and how far it may move the watermark: to the last
 * event before the first one whose fetch-back must be retried (so that one is walked again next time). Settled events
 * cost nothing; non-transaction events are skipped.
 */
async function verifiedSnapshots(db: Database, client: SmartRouterClient, merchant: MerchantRow, events: readonly SmartRouterEvent[]) {
  const settled = await settledEvents(
    db,
    events.map((event) => ({ merchantId: merchant.id, id: event.id })),
    { rejectedIsOpen: true },
  );
  const now = new Date().toISOString();
  const open = events.filter((event) => !settled.has(merchant.id, event.id));
  const complete = (event: SmartRouterEvent) => Array.isArray(event.data?.transaction?.operations);
  // Items without the transaction's history (a reading of the list smart-router.md leaves open) are fetched by id;
  // an item whose data shows it is not a transaction event is not.
  const toFetch = open.filter((event) => !complete(event) && (!event.data || event.data.transaction));
  const fetched = await verifyEvents(
    client,
    merchant.smartRouterProjectId,
    toFetch.map((event) => event.id),
  );
  const snapshots: VerifiedSnapshot[] = [];
  let covered = events.length;
  for (const [index, listed] of events.entries()) {
    if (!open.includes(listed)) continue;
    const verification = fetched.get(listed.id);
    if (verification?.kind === "retry") {
      covered = index;
      break;
    }
    if (verification && verification.kind !== "verified") {
      log("warn", "event_log.unreadable_event", { merchant_id: merchant.id, event_id: listed.id, outcome: verification.kind });
      continue;
    }
    const event = verification?.event ?? listed;
    const inbox = { eventId: event.id, deliveries: 0, receivedAt: now, now };
    const verified = snapshotOfVerifiedEvent({ merchantId: merchant.id, event, read: verification?.read, inbox });
    // An event's own snapshot stands only with its transaction's whole operation history.
    if (!verified || (verified.source.kind === "event" && !Array.isArray(verified.snapshot.operations))) continue;
    snapshots.push(verified);
  }
  return { snapshots, covered: events.slice(0, covered) };
}

/**
 * The snapshots that may add something: drops those whose transaction's history is archived and whose record already
 * holds them (version at or below the stored one). Applying them would change nothing but bring their events and
 * operations back into D1 after retention moved them to R2 (a walk far behind the log, e.g. after a long pause).
 */
async function withoutArchivedHistory(db: Database, snapshots: readonly VerifiedSnapshot[]): Promise<VerifiedSnapshot[]> {
  if (snapshots.length === 0) return [];
  const keys = snapshots.map((item) => ({ merchantId: item.merchantId, id: item.snapshot.id }));
  const [stored, archived] = await Promise.all([loadStoredStates(db, keys), archivedTransactions(db, keys)]);
  return snapshots.filter((item) => {
    const record = stored.get(item.merchantId, item.snapshot.id);
    const holds = record !== null && snapshotVersion(item.snapshot, item.source) <= record.snapshotVersion;
    return !(holds && archived.has({ merchantId: item.merchantId, id: item.snapshot.id }));
  });
}

/** Moves the watermark to `to` if it is still at `from` (another walk may have moved it), and adds the walk's figures. */
function cursorStatement(
  merchantId: string,
  from: string | null,
  to: { id: string; firedAt: string | null },
  figures: { calls: number; walked: number },
): BatchStatement {
  return sql`INSERT INTO ${eventLogCursors} (merchant_id, watermark_event_id, watermark_fired_at, events_walked, api_calls, last_run_at, last_error, updated_at)
    VALUES (${merchantId}, ${to.id}, ${to.firedAt}, ${figures.walked}, ${figures.calls}, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    ON CONFLICT (merchant_id) DO UPDATE SET
      watermark_event_id = CASE WHEN ${eventLogCursors.watermarkEventId} IS ${from} THEN excluded.watermark_event_id ELSE ${eventLogCursors.watermarkEventId} END,
      watermark_fired_at = CASE WHEN ${eventLogCursors.watermarkEventId} IS ${from} THEN excluded.watermark_fired_at ELSE ${eventLogCursors.watermarkFiredAt} END,
      events_walked = ${eventLogCursors.eventsWalked} + excluded.events_walked,
      api_calls = ${eventLogCursors.apiCalls} + excluded.api_calls,
      last_run_at = excluded.last_run_at, last_error = NULL, updated_at = excluded.updated_at`;
}

/** Records a walk that moved nothing (no new events, or an error), and may reset the watermark. */
async function saveCursor(
  db: Database,
  merchantId: string,
  from: string | null,
  to: string | null,
  figures: { calls: number; walked: number; error: string | null },
) {
  const now = new Date().toISOString();
  await db
    .insert(eventLogCursors)
    .values({ merchantId, watermarkEventId: to, apiCalls: figures.calls, lastRunAt: now, lastError: figures.error, updatedAt: now })
    .onConflictDoUpdate({
      target: eventLogCursors.merchantId,
      set: {
        watermarkEventId: sql`CASE WHEN ${eventLogCursors.watermarkEventId} IS ${from} THEN ${to} ELSE ${eventLogCursors.watermarkEventId} END`,
        apiCalls: sql`${eventLogCursors.apiCalls} + ${figures.calls}`,
        lastRunAt: now,
        lastError: figures.error,
        updatedAt: now,
      },
    });
}

/** A walk of the event log that fails is tried again this many times before it waits for the next cron run. */
const WALK_RETRIES = 5;

/**
 * After a walk failed: our pacer's wait goes on when the pacer says; a failure is tried again soon, at most WALK_RETRIES
 * times, then the next cron run walks again from the watermark (nothing is lost by giving up: the watermark did not move).
 */
export async function retryWalk({
  env,
  config,
  work,
  error,
}: Omit<BatchLaneInput<EventLogMessage>, "db"> & { error: unknown }): Promise<void> {
  const waiting = error instanceof SmartRouterError && error.isLocalBackpressure;
  const attempt = work.attempt ?? 0;
  const hintMs = error instanceof SmartRouterError ? error.retryAfterMs : null;
  if (waiting) {
    await sendAll(env.BATCHES, [work], Math.max(1, Math.ceil((hintMs ?? 1_000) / 1000)));
  } else if (attempt < WALK_RETRIES) {
    const delay = policyDelaySeconds(BATCH_UNIT_RETRY, attempt + 1, { scale: config.RETRY_SCHEDULE_SCALE, hintMs });
    await sendAll(env.BATCHES, [{ ...work, attempt: attempt + 1 }], delay);
  } else {
    log("warn", "event_log.walk_failed", { merchant_id: work.merchant_id, error: safeErrorMessage(error), attempt });
  }
}
