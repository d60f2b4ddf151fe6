import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { FETCH_BACK_VIAS } from "../../smart-router/fetch-back";
import { nowIso } from "./columns";

/*
 * The timeline of a payment (GET /v1/transactions/{id}/timeline) and the pipeline's figures (GET /v1/pipeline), written
 * in the D1 batch that commits the work they describe (migrations/0010_timeline.sql). Growth is bounded by the
 * retention step (issues 14 and 21, src/retention): a payment's rows move to R2 with its history (history-rows.ts) and
 * are read back by the timeline; rows no payment can show are pruned by their time column past RETENTION_DAYS, through
 * the `(merchant_id, <time>)` index walked per merchant (retention/prune.ts); nothing else deletes these rows.
 */

/** One row per webhook delivery the edge accepted (its request id), once the consumer committed the batch that carried it. */
export const webhookDeliveries = sqliteTable(
  "webhook_deliveries",
  {
    merchantId: text("merchant_id").notNull(),
    eventId: text("event_id").notNull(),
    /** The edge's request id: a message retried or redelivered by the queue is recorded once. */
    deliveryId: text("delivery_id").notNull(),
    /** When the edge accepted it. */
    receivedAt: text("received_at").notNull(),
    /** The event was already in the inbox (or an earlier delivery of it came in the same queue batch). */
    duplicate: integer("duplicate", { mode: "boolean" }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.merchantId, t.eventId, t.deliveryId] }),
    index("webhook_deliveries_received").on(t.merchantId, t.receivedAt),
  ],
);

export const FETCH_BACK_OUTCOMES = ["verified", "not_found", "rejected", "retry"] as const;
export type FetchBackOutcome = (typeof FETCH_BACK_OUTCOMES)[number];

/** One row per fetch-back of a delivered event (smart-router/fetch-back.ts), whatever it answered. */
export const fetchBacks = sqliteTable(
  "fetch_backs",
  {
    id: integer("id").primaryKey(),
    merchantId: text("merchant_id").notNull(),
    eventId: text("event_id").notNull(),
    /** When Smart Router answered (or the call was given up). */
    at: text("at").notNull(),
    outcome: text("outcome", { enum: FETCH_BACK_OUTCOMES }).notNull(),
    /** One of smart-router/fetch-back.ts's FETCH_BACK_VIAS: which calls stood for the event. */
    via: text("via", { enum: FETCH_BACK_VIAS }).notNull(),
    apiCalls: integer("api_calls").notNull(),
    /** How long our own pacer held its calls back: waited in place, or the wait it asked for when it postponed the call. */
    paceWaitMs: integer("pace_wait_ms").notNull(),
    /** Why it did not verify: the error's kind and message, or the rejection; never a body. */
    detail: text("detail"),
  },
  (t) => [index("fetch_backs_event").on(t.merchantId, t.eventId, t.at), index("fetch_backs_at").on(t.merchantId, t.at)],
);

/**
 * Every change of a record's status, in commit order: written before 0030 only (the record's `status_history` holds them
 * since). `from_status` is the previous row's `to_status`: null for the first status seen. Emptied by 0035, dropped by
 * the next release's migration: no code reads or writes it; its columns are the shape of a status change as the
 * timeline and the archive read it (db/rows.ts `StatusChangeRow`).
 */
export const transactionStatusChanges = sqliteTable(
  "transaction_status_changes",
  {
    id: integer("id").primaryKey(),
    merchantId: text("merchant_id").notNull(),
    transactionId: text("transaction_id").notNull(),
    at: text("at").notNull().default(nowIso),
    fromStatus: text("from_status"),
    toStatus: text("to_status").notNull(),
    /** The event whose snapshot made the change; null when an API read did (batch, reconciliation, an event without operations). */
    eventId: text("event_id"),
    eventName: text("event_name"),
    /** For a read: the lower bound of its time on Smart Router's clock (state-machine.ts). */
    readAt: text("read_at"),
  },
  (t) => [index("transaction_status_changes_transaction").on(t.merchantId, t.transactionId, t.id)],
);

export const FULFILLMENT_ATTEMPT_OUTCOMES = ["delivered", "failed"] as const;
/** Why an attempt failed, as the timeline names it; never the merchant's answer body. */
export const FULFILLMENT_ATTEMPT_ERRORS = [
  "http_status",
  "redirect",
  "timeout",
  "network",
  "not_configured",
  "url_not_allowed",
  "record_missing",
] as const;
export type FulfillmentAttemptError = (typeof FULFILLMENT_ATTEMPT_ERRORS)[number];

/** One row per fulfilment notification attempt (fulfillment/deliver.ts): the merchant's HTTP status or an error class, never a body. */
export const fulfillmentAttempts = sqliteTable(
  "fulfillment_attempts",
  {
    id: integer("id").primaryKey(),
    merchantId: text("merchant_id").notNull(),
    transactionId: text("transaction_id").notNull(),
    /** The outbox row's attempt counter when this attempt took the lease. */
    attempt: integer("attempt").notNull(),
    at: text("at").notNull(),
    outcome: text("outcome", { enum: FULFILLMENT_ATTEMPT_OUTCOMES }).notNull(),
    httpStatus: integer("http_status"),
    /** One of FULFILLMENT_ATTEMPT_ERRORS; null when delivered. */
    errorClass: text("error_class", { enum: FULFILLMENT_ATTEMPT_ERRORS }),
  },
  (t) => [index("fulfillment_attempts_transaction").on(t.merchantId, t.transactionId, t.id)],
);

/** How long pipeline_minutes rows are kept: the widest `GET /v1/pipeline` window (1,440 minutes) and an hour's margin. */
export const PIPELINE_MINUTES_KEPT_MINUTES = 1_440 + 60;

/**
 * `GET /v1/pipeline`'s first deliveries (the inbox rows' `first_delivery_id`, 0024) counted per merchant and minute of
 * first receipt (`substr(first_received_at, 1, 16)`), by their event's outcome now: written by the inbox write's own D1
 * batch, one row per (merchant, minute) a statement changed (transactions/pipeline-minutes.ts), so a webhook costs no
 * index entry of its own. WITHOUT ROWID in the migration (0032). Pruned past PIPELINE_MINUTES_KEPT_MINUTES (retention/prune.ts).
 */
export const pipelineMinutes = sqliteTable(
  "pipeline_minutes",
  {
    merchantId: text("merchant_id").notNull(),
    /** `YYYY-MM-DDTHH:MM`, UTC: the first 16 characters of the events' `first_received_at`. */
    minute: text("minute").notNull(),
    pending: integer("pending").notNull().default(0),
    applied: integer("applied").notNull().default(0),
    stale: integer("stale").notNull().default(0),
    rejected: integer("rejected").notNull().default(0),
    ignored: integer("ignored").notNull().default(0),
    /** The applied ones' lags in whole ms (processed_at - first_received_at), a JSON array as long as `applied`, in write order. */
    lags: text("lags").notNull().default("[]"),
  },
  (t) => [primaryKey({ columns: [t.merchantId, t.minute] })],
);
