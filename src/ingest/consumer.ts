import { inList } from "../db/bulk";
import type { Database } from "../db/client";
import { isMerchantFenced, safeErrorMessage } from "../db/errors";
import { fencedMerchants, MerchantFencedError } from "../db/fence";
import type { MerchantRow } from "../db/rows";
import { merchants } from "../db/schema";
import { forgetMerchantShards } from "../db/shards";
import type { AppConfig, AppEnv } from "../env";
import { fulfillmentStatusFor } from "../fulfillment/policy";
import { log } from "../lib/log";
import { smartRouterFor } from "../merchants/smart-router";
import { VERIFICATION_RETRY } from "../queue/backoff";
import type { ConsumerInput } from "../queue/consumer";
import { parseOrDeadLetter, storeDeadLetter } from "../queue/dead-letters";
import { QUEUES, type WebhookMessage, webhookMessageV1 } from "../queue/messages";
import { FENCE_WAIT_SECONDS, type Postponed, postpone } from "../queue/retry";
import { sendAll } from "../queue/send";
import { SmartRouterError } from "../smart-router/errors";
import { type Verification, verifyEvents } from "../smart-router/fetch-back";
import { applySnapshots, type VerifiedSnapshot } from "../transactions/apply";
import { type EventRecord, settledEvents } from "../transactions/inbox";
import { sendLaneNudges } from "../transactions/stream";
import {
  byArrival,
  type FetchBackRecord,
  fetchBackRecord,
  recordDeliveries,
  recordFetchBacks,
  recordUnfoldedFetchBacks,
} from "../transactions/timeline-record";
import { snapshotOfVerifiedEvent } from "../transactions/verified-snapshot";
import { reportSettled, type SettledDeliveries } from "./delivery-gate";
import { countForgedDeliveries } from "./forged";
import { claimParked, finishResume, isParked, isWakeup, MIN_WAKEUP_SECONDS, parkDeliveries, wakeupOf, wakeupSeconds } from "./parking";

interface Delivery {
  message: Message<unknown>;
  body: WebhookMessage;
}

/** The deliveries of one (merchant, event) in this batch: they share one fetch-back and one inbox row. */
interface PendingEvent {
  merchantId: string;
  eventId: string;
  deliveries: Delivery[];
}

/** What the batch will do, built step by step and committed at once. */
interface Plan {
  inbox: EventRecord[];
  snapshots: VerifiedSnapshot[];
  toAck: Message<unknown>[];
  toRetry: { delivery: Delivery; error: SmartRouterError }[];
  /** Events Smart Router did not know: asked once more after a delay (one message per event). */
  toRecheck: WebhookMessage[];
  /** Fetch-backs that settled nothing (retried, asked again later): rows of their own on the payment's timeline. */
  fetchBacks: FetchBackRecord[];
  /** Fetch-backs that settled their event: folded into its inbox row, unless another consumer settled it first. */
  foldedFetchBacks: FetchBackRecord[];
}

const key = (merchantId: string, eventId: string) => `${merchantId}\u0000${eventId}`;

/** What this batch knows of one event before its fetch-back: whose it is, when it first came, how many deliveries count. */
interface EventSeen {
  merchantId: string;
  eventId: string;
  receivedAt: string;
  /** The earliest delivery of the event in this batch: its inbox row's first delivery, should this batch create the row. */
  firstDeliveryId: string;
  deliveries: number;
}

/** The one constructor of inbox records for this consumer: what is known of the event, and what happened to it. */
function inboxRecord(
  event: EventSeen,
  now: string,
  what: Pick<EventRecord, "outcome" | "detail"> & Partial<Pick<EventRecord, "name" | "transactionId" | "firedAt" | "fetchBack">>,
): EventRecord {
  return { name: null, transactionId: null, firedAt: null, ...event, ...what, now };
}

/** A delivery Smart Router has not yet answered "not found" for: a 404 on it is asked once more, not final. */
const isFirstAsk = (delivery: Delivery) => delivery.body.not_found_at === undefined;

/** Deliveries a recheck message stands for were counted when it was sent. */
const countOf = (deliveries: readonly Delivery[]) => deliveries.filter((d) => d.body.not_found_at === undefined).length;

/**
 * Step 1, classify: parse (bad bodies are dead-lettered), hold back the deliveries of a merchant this shard fences (it is
 * switching shards: its writes would fail the whole batch's commit), drop deliveries for merchants that are gone, skip
 * settled events.
 */
async function classify(db: Database, batch: MessageBatch<unknown>, plan: Plan, now: string) {
  const parsed: Delivery[] = [];
  for (const message of batch.messages) {
    const body = await parseOrDeadLetter(db, batch.queue, message, webhookMessageV1);
    if (body) parsed.push({ message, body });
  }
  const fenced = await fencedMerchants(db, [...new Set(parsed.map((v) => v.body.merchant_id))]);
  const held = parsed.filter((v) => fenced.has(v.body.merchant_id));
  const valid = parsed.filter((v) => !fenced.has(v.body.merchant_id));
  // In arrival order, as recordDeliveries orders them: each event's first delivery is the one its inbox row records.
  const arrival = ({ body }: Delivery) => ({ receivedAt: body.received_at, deliveryId: body.delivery_id });
  valid.sort((a, b) => byArrival(arrival(a), arrival(b)));
  const merchantIds = [...new Set(valid.map((v) => v.body.merchant_id))];
  const merchantRows = new Map<string, MerchantRow>();
  if (merchantIds.length > 0) {
    for (const row of await db.select().from(merchants).where(inList(merchants.id, merchantIds))) merchantRows.set(row.id, row);
  }
  const settled = await settledEvents(
    db,
    valid.map((v) => ({ merchantId: v.body.merchant_id, id: v.body.event_id })),
  );

  const pending = new Map<string, PendingEvent>();
  for (const delivery of valid) {
    const { merchant_id: merchantId, event_id: eventId } = delivery.body;
    if (!merchantRows.has(merchantId)) {
      const { message, body } = delivery;
      await storeDeadLetter({
        db,
        id: message.id,
        queue: batch.queue,
        body,
        error: "merchant no longer exists",
        attempts: message.attempts,
      });
      delivery.message.ack();
      continue;
    }
    if (settled.has(merchantId, eventId)) {
      // Already settled: the delivery is counted and costs no API call.
      const { received_at: receivedAt, delivery_id: firstDeliveryId } = delivery.body;
      const event = { merchantId, eventId, receivedAt, firstDeliveryId, deliveries: countOf([delivery]) };
      plan.inbox.push(inboxRecord(event, now, { outcome: "pending", detail: null }));
      plan.toAck.push(delivery.message);
      continue;
    }
    const entry = pending.get(key(merchantId, eventId)) ?? { merchantId, eventId, deliveries: [] };
    entry.deliveries.push(delivery);
    pending.set(key(merchantId, eventId), entry);
  }
  return { valid, held, merchantRows, pending: [...pending.values()] };
}

/**
 * Step 2, verify: fetch every pending event back with its merchant's own credentials, merchants side by side. One
 * merchant's failure (a secret that does not decrypt, a network error) becomes a retry of that merchant's events only.
 */
async function verify(env: AppEnv, config: AppConfig, merchantRows: Map<string, MerchantRow>, pending: readonly PendingEvent[]) {
  const verifications = new Map<string, Verification>();
  await Promise.all(
    [...Map.groupBy(pending, (entry) => entry.merchantId)].map(async ([merchantId, group]) => {
      const merchant = merchantRows.get(merchantId);
      if (!merchant) return;
      try {
        const client = await smartRouterFor(env, config, merchant, "interactive");
        const verified = await verifyEvents(
          client,
          merchant.smartRouterProjectId,
          group.map((entry) => entry.eventId),
        );
        for (const [eventId, verification] of verified) verifications.set(key(merchantId, eventId), verification);
      } catch (error) {
        log("error", "webhooks.merchant_failed", {
          merchant_id: merchantId,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }),
  );
  return verifications;
}

/** Step 3, decide: turn each event's verification into inbox records, snapshots to apply, acks, retries and rechecks. */
function decideEvents(pending: readonly PendingEvent[], verifications: Map<string, Verification>, plan: Plan, now: string) {
  for (const entry of pending) {
    const verification: Verification = verifications.get(key(entry.merchantId, entry.eventId)) ?? {
      kind: "retry",
      error: new SmartRouterError("network", "not verified"),
    };
    decideEvent(entry, verification, plan, now);
  }
}

/** One event's part of step 3: retried, asked again later, rejected, or on to `decideVerified`. */
function decideEvent(entry: PendingEvent, verification: Verification, plan: Plan, now: string) {
  const first = entry.deliveries[0];
  if (!first) return;
  const fetchBack = fetchBackRecord(entry.merchantId, entry.eventId, verification);
  const event: EventSeen = {
    merchantId: entry.merchantId,
    eventId: entry.eventId,
    receivedAt: first.body.received_at,
    firstDeliveryId: first.body.delivery_id,
    deliveries: countOf(entry.deliveries),
  };
  const hint = { name: first.body.event_type };
  const settles = verification.kind !== "retry" && !(verification.kind === "not_found" && entry.deliveries.every(isFirstAsk));
  if (fetchBack) (settles ? plan.foldedFetchBacks : plan.fetchBacks).push(fetchBack);
  if (verification.kind === "retry") {
    // Counted when the retried deliveries come back.
    for (const delivery of entry.deliveries) plan.toRetry.push({ delivery, error: verification.error });
    plan.inbox.push(inboxRecord({ ...event, deliveries: 0 }, now, { ...hint, outcome: "pending", detail: verification.error.message }));
    return;
  }
  for (const delivery of entry.deliveries) plan.toAck.push(delivery.message);
  if (verification.kind === "not_found" && entry.deliveries.every(isFirstAsk)) {
    // Horizon: one re-check per event, after FETCH_BACK_RECHECK_SECONDS; a second 404 is final (below).
    plan.toRecheck.push({ ...first.body, not_found_at: now });
    plan.inbox.push(inboxRecord(event, now, { ...hint, outcome: "pending", detail: "not found at Smart Router yet; asked again later" }));
    return;
  }
  if (verification.kind === "not_found" || verification.kind === "rejected") {
    plan.inbox.push(inboxRecord(event, now, { ...hint, outcome: "rejected", detail: verification.detail, fetchBack }));
    return;
  }
  decideVerified(event, { ...verification, fetchBack }, plan, now);
}

/** A verified event: its transaction's snapshot goes to the apply; an event without a transaction is ignored. */
function decideVerified(
  event: EventSeen,
  verification: Extract<Verification, { kind: "verified" }> & { fetchBack: FetchBackRecord | null },
  plan: Plan,
  now: string,
) {
  const { event: verified, read, fetchBack } = verification;
  const { eventId, deliveries, receivedAt, firstDeliveryId } = event;
  const inbox = { eventId, deliveries, receivedAt, now, firstDeliveryId, fetchBack };
  const snapshot = snapshotOfVerifiedEvent({ merchantId: event.merchantId, event: verified, read, inbox });
  if (!snapshot) {
    const what = {
      name: verified.name,
      firedAt: verified.fired_at,
      outcome: "ignored",
      detail: "not a transaction event",
      fetchBack,
    } as const;
    plan.inbox.push(inboxRecord(event, now, what));
    return;
  }
  plan.snapshots.push(snapshot);
  if (read) {
    // The event is settled by the read of its transaction; its own row records that.
    plan.inbox.push(
      inboxRecord(event, now, {
        name: verified.name,
        transactionId: snapshot.snapshot.id,
        firedAt: verified.fired_at,
        outcome: "applied",
        detail: "event without operations: transaction read instead",
        fetchBack,
      }),
    );
  }
}

/** What steps 4 and 5 work with: the batch's decisions and the deliveries they stand for. */
interface Decided {
  env: AppEnv;
  db: Database;
  config: AppConfig;
  plan: Plan;
  valid: Delivery[];
  merchantRows: Map<string, MerchantRow>;
  now: string;
}

/** Step 4, commit: the batch's records in one D1 batch, then the fulfilment nudges. */
async function commit({ env, db, plan, valid, merchantRows, now }: Decided) {
  const applied = await applySnapshots({
    db,
    snapshots: plan.snapshots,
    inbox: plan.inbox,
    extra: [
      ...countForgedDeliveries(plan.inbox.filter((record) => record.outcome === "rejected")),
      // The payment's timeline, in the same commit: deliveries (before the inbox write, which decides duplicates) and fetch-backs.
      ...recordDeliveries(
        valid
          .filter((d) => merchantRows.has(d.body.merchant_id))
          .map(({ body }) => ({
            merchantId: body.merchant_id,
            eventId: body.event_id,
            deliveryId: body.delivery_id,
            receivedAt: body.received_at,
          })),
      ),
      ...recordFetchBacks(plan.fetchBacks),
    ],
    afterInbox: recordUnfoldedFetchBacks(plan.foldedFetchBacks),
    fulfillment: (merchantId, captured) =>
      fulfillmentStatusFor(merchantRows.get(merchantId) ?? { fulfillmentUrl: null, fulfillmentUrlSetAt: null }, captured),
    now,
  });
  await sendAll(env.FULFILLMENTS, applied.newFulfillments).catch((error: unknown) => {
    // The outbox row is committed; the scheduled sweep re-sends the nudge.
    log("warn", "fulfillment.nudge_failed", { count: applied.newFulfillments.length, error: safeErrorMessage(error) });
  });
  await sendLaneNudges(env.ENDPOINT_MESSAGES, applied.endpointLanes);
}

/** When the commit failed: nothing was recorded, so every delivery it would have acked is retried too. */
async function retryUncommitted({ env, db, config, plan, valid }: Decided, error: unknown) {
  // D1's own message, never drizzle's: it quotes the batch's bound values (merchant and event ids, amounts).
  log("error", "webhooks.batch_failed", { messages: valid.length, error: safeErrorMessage(error) });
  const all = [...valid.filter((d) => plan.toAck.includes(d.message)), ...plan.toRetry.map((r) => r.delivery)];
  await retryVerification(
    env,
    db,
    config,
    all.map((delivery) => ({ delivery, error })),
  );
}

/**
 * The deliveries this batch took out of the pipeline (acked, or given up for good), for the edge's gate: an event asked
 * again later keeps one of its deliveries in, the one its re-check message stands for.
 */
function leftPipeline(valid: readonly Delivery[], plan: Plan, gaveUp: readonly WebhookMessage[]): SettledDeliveries[] {
  const acked = new Set(plan.toAck);
  const rechecked = new Set(plan.toRecheck.map((body) => key(body.merchant_id, body.event_id)));
  const left: WebhookMessage[] = [...gaveUp];
  for (const { message, body } of valid) {
    if (!acked.has(message)) continue;
    if (rechecked.delete(key(body.merchant_id, body.event_id))) continue;
    left.push(body);
  }
  return [...Map.groupBy(left, (body) => body.merchant_id)].map(([merchantId, bodies]) => ({
    merchantId,
    receivedAt: bodies.map((body) => body.received_at),
  }));
}

/** Event ids a `webhooks.fetch_back_failed` line names: a flood's thousands would only flood the logs. */
const LOGGED_EVENT_IDS = 5;

/** One log line per merchant and failure (kind, status) of this batch, not one per event: a flood stays a few lines. */
function logFailedFetchBacks(toRetry: Plan["toRetry"]) {
  const groups = Map.groupBy(toRetry, ({ delivery, error }) => `${delivery.body.merchant_id}\u0000${error.kind}\u0000${error.status}`);
  for (const group of groups.values()) {
    const [first] = group;
    if (!first) continue;
    log(first.error.kind === "authentication" ? "error" : "warn", "webhooks.fetch_back_failed", {
      merchant_id: first.delivery.body.merchant_id,
      kind: first.error.kind,
      status: first.error.status,
      events: group.length,
      event_ids: group.slice(0, LOGGED_EVENT_IDS).map(({ delivery }) => delivery.body.event_id),
      max_attempt: Math.max(...group.map(({ delivery }) => (delivery.body.attempt ?? 0) + 1)),
    });
  }
}

/** Step 5, settle: ack what the commit recorded, put the failed fetch-backs back under the verification policy. */
async function settle({ env, db, config, plan, valid }: Decided) {
  for (const message of plan.toAck) message.ack();
  logFailedFetchBacks(plan.toRetry);
  const gaveUp = await retryVerification(env, db, config, plan.toRetry);
  await reportSettled(env.DELIVERY_GATE, leftPipeline(valid, plan, gaveUp));
}

/**
 * Parks deliveries that wait for the merchant's Smart Router budget (parking.ts) and sends the wake-ups they booked;
 * acks the queue messages parked (a resumed delivery's row simply stays). A wake-up that fails to send is logged: the
 * cron wakes orphaned parking (scheduled.ts), so nothing parked is forgotten.
 */
async function park(env: AppEnv, db: Database, items: readonly Postponed<WebhookMessage>[], hintMs: number | null) {
  const delaySeconds = wakeupSeconds(hintMs);
  const toWake = await parkDeliveries(
    db,
    items.map((item) => item.body),
    Date.now(),
    delaySeconds,
  );
  await sendAll(env.WEBHOOKS, toWake.map(wakeupOf), delaySeconds).catch((error: unknown) => {
    log("warn", "webhooks.wakeup_failed", { merchants: toWake.length, error: safeErrorMessage(error) });
  });
  for (const { message } of items) if (!isParked(message)) message.ack();
}

/**
 * Resumes each merchant's parked deliveries that a wake-up message asks for: claims a page of them and runs it through the
 * same steps as fresh deliveries, then records what happened and wakes again while any are left. Acks the wake-up only
 * once its resume is recorded; a failed one is retried by the queue (a claim lapses after its lease).
 */
async function resumeParked(input: ConsumerInput, wakeups: readonly Message<unknown>[]) {
  const { env, db } = input;
  const merchantOf = (message: Message<unknown>) => (isWakeup(message.body) ? message.body.merchant_id : "");
  const fenced = await fencedMerchants(db, [...new Set(wakeups.map(merchantOf))]);
  const merchantIds = [...new Set(wakeups.map(merchantOf))].filter((merchantId) => merchantId !== "" && !fenced.has(merchantId));
  await Promise.all(
    merchantIds.map(async (merchantId) => {
      const messages = await claimParked(db, merchantId, Date.now());
      if (messages.length > 0) await consumeDeliveries({ ...input, batch: { ...input.batch, messages } });
      if (await finishResume(db, merchantId, messages, Date.now())) await sendAll(env.WEBHOOKS, [wakeupOf(merchantId)], MIN_WAKEUP_SECONDS);
    }),
  );
  // A fenced merchant's wake-up comes back after the fence's seconds (its claim would fail the others' resume).
  for (const message of wakeups) {
    if (!fenced.has(merchantOf(message))) message.ack();
    else {
      forgetMerchantShards(merchantOf(message));
      message.retry({ delaySeconds: FENCE_WAIT_SECONDS });
    }
  }
}

/** The webhooks queue carries deliveries and wake-ups of parked deliveries: each goes its way, side by side. */
export async function consumeWebhooks(input: ConsumerInput): Promise<void> {
  const wakeups = input.batch.messages.filter((message) => isWakeup(message.body));
  const deliveries = input.batch.messages.filter((message) => !isWakeup(message.body));
  await Promise.all([
    deliveries.length > 0 ? consumeDeliveries({ ...input, batch: { ...input.batch, messages: deliveries } }) : undefined,
    wakeups.length > 0 ? resumeParked(input, wakeups) : undefined,
  ]);
}

/**
 * Consumes a batch of webhook deliveries in steps: classify → verify (fetch-back) → decide → commit (one D1 batch) →
 * settle (ack, retry, re-check). Nothing is acked before the commit that records it.
 */
async function consumeDeliveries({ batch, env, db, config }: ConsumerInput): Promise<void> {
  const now = new Date().toISOString();
  const plan: Plan = { inbox: [], snapshots: [], toAck: [], toRetry: [], toRecheck: [], fetchBacks: [], foldedFetchBacks: [] };
  const { valid, held, merchantRows, pending } = await classify(db, batch, plan, now);
  // A fenced merchant's deliveries wait the fence's seconds (no attempt spent); the batch's other merchants go on.
  if (held.length > 0)
    await retryVerification(
      env,
      db,
      config,
      held.map((delivery) => ({ delivery, error: new MerchantFencedError() })),
    );
  if (valid.length === 0) return;
  decideEvents(pending, await verify(env, config, merchantRows, pending), plan, now);
  // Rechecks are queued before the commit: were it to fail, a recheck is only an extra fetch.
  if (plan.toRecheck.length > 0) await sendAll(env.WEBHOOKS, plan.toRecheck, config.FETCH_BACK_RECHECK_SECONDS);
  const committed = await commitOrSplit({ env, db, config, plan, valid, merchantRows, now });
  if (committed) await settle(committed);
}

/**
 * Commits the batch; when a merchant's switch fenced it after classify looked (the fence landed while its events were
 * fetched back), that merchant's deliveries wait the fence's seconds and the others commit again at once, so one
 * merchant's move never holds back the rest of the batch. Horizon: that one more commit; should it fail too, its
 * deliveries are retried as any failed commit's. Answers what was committed, or null.
 */
async function commitOrSplit(decided: Decided): Promise<Decided | null> {
  try {
    await commit(decided);
    return decided;
  } catch (error) {
    const fenced = isMerchantFenced(error) ? await fencedMerchants(decided.db, merchantsOf(decided.valid)) : new Set<string>();
    if (fenced.size === 0) {
      await retryUncommitted(decided, error);
      return null;
    }
    const { held, rest } = splitByMerchants(decided, fenced);
    await retryVerification(
      decided.env,
      decided.db,
      decided.config,
      held.map((delivery) => ({ delivery, error: new MerchantFencedError() })),
    );
    if (rest.valid.length === 0) return null;
    try {
      await commit(rest);
      return rest;
    } catch (again) {
      await retryUncommitted(rest, again);
      return null;
    }
  }
}

const merchantsOf = (deliveries: readonly Delivery[]) => [...new Set(deliveries.map((d) => d.body.merchant_id))];

/** The batch without the deliveries, records and acks of `merchantIds` (held), and those deliveries. */
function splitByMerchants(decided: Decided, merchantIds: ReadonlySet<string>): { held: Delivery[]; rest: Decided } {
  const { plan, valid } = decided;
  const held = valid.filter((d) => merchantIds.has(d.body.merchant_id));
  const heldMessages = new Set(held.map((d) => d.message));
  const kept = <T extends { merchantId: string }>(items: readonly T[]) => items.filter((item) => !merchantIds.has(item.merchantId));
  const restPlan: Plan = {
    inbox: kept(plan.inbox),
    snapshots: kept(plan.snapshots),
    toAck: plan.toAck.filter((message) => !heldMessages.has(message)),
    toRetry: plan.toRetry.filter(({ delivery }) => !merchantIds.has(delivery.body.merchant_id)),
    toRecheck: plan.toRecheck.filter((body) => !merchantIds.has(body.merchant_id)),
    fetchBacks: kept(plan.fetchBacks),
    foldedFetchBacks: kept(plan.foldedFetchBacks),
  };
  return { held, rest: { ...decided, plan: restPlan, valid: valid.filter((d) => !merchantIds.has(d.body.merchant_id)) } };
}

/**
 * Tries deliveries again later under the verification policy: its horizon (3 days, Smart Router's own) counts from the
 * first failed try, or from when the edge received the delivery; past it, the delivery is a dead letter, which the
 * scheduled work redrives by itself once Smart Router answers the merchant again (scheduled.ts).
 */
async function retryVerification(
  env: AppEnv,
  db: Database,
  config: AppConfig,
  items: readonly { delivery: Delivery; error: unknown }[],
): Promise<WebhookMessage[]> {
  const gaveUp: WebhookMessage[] = [];
  const postponed: Postponed<WebhookMessage>[] = items.map(({ delivery, error }) => ({
    message: delivery.message,
    body: { ...delivery.body, first_attempt_at: delivery.body.first_attempt_at ?? delivery.body.received_at },
    error,
  }));
  await postpone(env.WEBHOOKS, postponed, {
    policy: VERIFICATION_RETRY,
    scale: config.RETRY_SCHEDULE_SCALE,
    now: Date.now(),
    park: (waiting, hintMs) => park(env, db, waiting, hintMs),
    deadLetter: async ({ message, body }, reason) => {
      // The edge's request id of the delivery, as the inbox row keeps it (`events.first_delivery_id`).
      log("error", "webhooks.gave_up", { merchant_id: body.merchant_id, event_id: body.event_id, request_id: body.delivery_id, reason });
      await storeDeadLetter({ db, id: message.id, queue: QUEUES.webhooks, body, error: reason, attempts: body.attempt ?? 0 });
      gaveUp.push(body);
    },
  });
  return gaveUp;
}
