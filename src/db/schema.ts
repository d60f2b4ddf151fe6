import { sql } from "drizzle-orm";
import { index, integer, primaryKey, type SQLiteColumn, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import type { RateLimitSettings } from "../rate-limiter/limiter";
import { FETCH_BACK_VIAS } from "../smart-router/fetch-back";
import { IN_FLIGHT_STATUSES } from "../smart-router/status";
import { sqlLiterals } from "./bulk";

/** Current time as ISO 8601 UTC with milliseconds, the one timestamp format stored; taken when the statement runs. */
export const nowIso = sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`;

export const merchants = sqliteTable(
  "merchants",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    smartRouterProjectId: text("smart_router_project_id").notNull(),
    /** AES-GCM ciphertext of the project's Smart Router secret key. */
    smartRouterSecretCiphertext: text("smart_router_secret_ciphertext").notNull(),
    smartRouterSecretKeyId: text("smart_router_secret_key_id").notNull(),
    webhookUsername: text("webhook_username").notNull(),
    /** SHA-256 of the webhook Basic password; the password itself is shown once. */
    webhookPasswordHash: text("webhook_password_hash").notNull(),
    /** The password a rotation replaced, still accepted until `webhook_password_previous_valid_until` (the overlap). */
    webhookPasswordPreviousHash: text("webhook_password_previous_hash"),
    webhookPasswordPreviousValidUntil: text("webhook_password_previous_valid_until"),
    /** Deliveries that named an event Smart Router does not know (forged, or sent with a leaked credential): a count, not rows. */
    forgedDeliveries: integer("forged_deliveries").notNull().default(0),
    lastForgedAt: text("last_forged_at"),
    fulfillmentUrl: text("fulfillment_url"),
    /** When `fulfillment_url` went from unset to set: a batch never notifies for a capture before it (no old orders shipped). */
    fulfillmentUrlSetAt: text("fulfillment_url_set_at"),
    fulfillmentSecretCiphertext: text("fulfillment_secret_ciphertext").notNull(),
    fulfillmentSecretKeyId: text("fulfillment_secret_key_id").notNull(),
    /** The signing secret a rotation replaced: notifications carry both signatures until `…_previous_valid_until`. */
    fulfillmentSecretPreviousCiphertext: text("fulfillment_secret_previous_ciphertext"),
    fulfillmentSecretPreviousKeyId: text("fulfillment_secret_previous_key_id"),
    fulfillmentSecretPreviousValidUntil: text("fulfillment_secret_previous_valid_until"),
    /**
     * Set when Smart Router answered 401/403 to the merchant's key: its batch work stops until the key is PATCHed, which
     * clears it. The reason names the answer, never the key.
     */
    smartRouterKeyRefusedAt: text("smart_router_key_refused_at"),
    smartRouterKeyRefusedReason: text("smart_router_key_refused_reason"),
    /** JSON of the merchant's Smart Router rate limits, null for defaults. */
    rateLimits: text("rate_limits", { mode: "json" }).$type<RateLimitSettings>(),
    /** JSON of the merchant's alert thresholds and alert URL, null for defaults (alerts/rules.ts). */
    alertSettings: text("alert_settings", { mode: "json" }).$type<AlertSettings>(),
    createdAt: text("created_at").notNull().default(nowIso),
    updatedAt: text("updated_at").notNull().default(nowIso),
  },
  // A Smart Router project belongs to one merchant: a second merchant on it would import the first one's payments.
  (t) => [uniqueIndex("merchants_smart_router_project").on(t.smartRouterProjectId)],
);

/** Per-merchant alert thresholds (`PATCH /admin/merchants/{id}` `alerts`); an absent field takes its default. */
export interface AlertSettings {
  authorized_uncaptured_hours?: number;
  apm_pending_minutes?: number;
  forged_per_hour?: number;
  fulfillment_failing_minutes?: number;
  /** Where alert notifications are POSTed (the rules of `fulfillment_url`); null or absent: none are sent. */
  url?: string | null;
}

export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    merchantId: text("merchant_id")
      .notNull()
      .references(() => merchants.id),
    /** SHA-256 of the whole key. */
    keyHash: text("key_hash").notNull(),
    createdAt: text("created_at").notNull().default(nowIso),
    revokedAt: text("revoked_at"),
  },
  (t) => [index("api_keys_merchant").on(t.merchantId)],
);

/** Outcome of one Smart Router event in the inbox. */
export const EVENT_OUTCOMES = ["pending", "applied", "stale", "rejected", "ignored"] as const;
export type EventOutcome = (typeof EVENT_OUTCOMES)[number];

/**
 * `status IN (…)` over the in-flight statuses as literals: SQLite uses a partial index only for a query that repeats the
 * index's WHERE term, which a bound parameter cannot. The reconciliation index and its query both take it from here.
 */
export const isInFlight = (status: SQLiteColumn) => sql`${status} IN (${sqlLiterals(IN_FLIGHT_STATUSES)})`;

/**
 * When a record was last looked at: the later of its last refresh by reconciliation and its last change (a webhook, a
 * batch). Written as CASE because drizzle-kit 0.31 splits an index expression at its commas (drizzle-orm#6062).
 */
export const lastLookedAt = (t: { reconciledAt: SQLiteColumn; updatedAt: SQLiteColumn }) =>
  sql`(CASE WHEN ${t.reconciledAt} > ${t.updatedAt} THEN ${t.reconciledAt} ELSE ${t.updatedAt} END)`;

/** The merchant's copy of a Smart Router transaction, as of the newest snapshot applied. */
export const transactions = sqliteTable(
  "transactions",
  {
    merchantId: text("merchant_id")
      .notNull()
      .references(() => merchants.id),
    id: text("id").notNull(),
    projectId: text("project_id").notNull(),
    invoiceId: text("invoice_id"),
    customerId: text("customer_id"),
    name: text("name"),
    paymentType: text("payment_type"),
    gatewayName: text("gateway_name"),
    status: text("status").notNull(),
    currency: text("currency").notNull(),
    /** Decimal strings in major units, exactly as Smart Router sends them. */
    amount: text("amount").notNull(),
    authorizedAmount: text("authorized_amount").notNull(),
    capturedAmount: text("captured_amount").notNull(),
    refundedAmount: text("refunded_amount").notNull(),
    availableAmount: text("available_amount").notNull(),
    voidedAmount: text("voided_amount").notNull(),
    metadata: text("metadata", { mode: "json" }).$type<Record<string, string>>().notNull(),
    sandbox: integer("sandbox", { mode: "boolean" }).notNull(),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    threeDSStatus: text("three_d_s_status"),
    chargedback: integer("chargedback", { mode: "boolean" }).notNull().default(false),
    createdAt: text("created_at").notNull(),
    /** Ordering key of the applied snapshot (from its own history); a snapshot at or below it is stale. */
    snapshotVersion: text("snapshot_version").notNull(),
    lastEventId: text("last_event_id"),
    lastEventName: text("last_event_name"),
    lastEventFiredAt: text("last_event_fired_at"),
    /** When reconciliation last refreshed the record from the API, changed or not. */
    reconciledAt: text("reconciled_at"),
    /** When our record last changed (ISO 8601 UTC), the status API's `updated_at`. */
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.merchantId, t.id] }),
    index("transactions_merchant_updated").on(t.merchantId, t.updatedAt, t.id),
    index("transactions_merchant_status_updated").on(t.merchantId, t.status, t.updatedAt, t.id),
    // The list's `payment_type` filter (0010): without it a rare payment type would walk every row of the merchant.
    index("transactions_merchant_payment_type_updated").on(t.merchantId, t.paymentType, t.updatedAt, t.id),
    // No query names it, but without it SQLite's planner (no ANALYZE statistics) takes transactions_merchant_updated for
    // a status + updated_after page and filters every status in the range (query-plan.test.ts caught it when dropped).
    index("transactions_status_updated").on(t.status, t.updatedAt),
    // Reconciliation walks each merchant's in-flight records least recently looked at first (a few per merchant per run).
    index("transactions_reconcile").on(t.merchantId, lastLookedAt(t), t.id).where(isInFlight(t.status)),
    // The export's keyset walk by creation time (0011): julianday() puts Smart Router's RFC 3339 times, whatever their
    // offset or fractional digits, on one UTC scale.
    index("transactions_merchant_created").on(t.merchantId, sql`julianday(${t.createdAt})`, t.id),
  ],
);

/** Every operation Smart Router reported for a transaction, deduplicated by its id. */
export const operations = sqliteTable(
  "operations",
  {
    merchantId: text("merchant_id").notNull(),
    id: text("id").notNull(),
    transactionId: text("transaction_id").notNull(),
    type: text("type").notNull(),
    amount: text("amount").notNull(),
    currency: text("currency"),
    isAttempt: integer("is_attempt", { mode: "boolean" }).notNull(),
    hasFailed: integer("has_failed", { mode: "boolean" }),
    isAccountable: integer("is_accountable", { mode: "boolean" }),
    gatewayOperationId: text("gateway_operation_id"),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    paymentType: text("payment_type"),
    metadata: text("metadata", { mode: "json" }).$type<Record<string, string>>(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.merchantId, t.id] }),
    index("operations_transaction").on(t.merchantId, t.transactionId, t.createdAt, t.id),
  ],
);

/** The event inbox: one row per Smart Router event per merchant, however often it was delivered. */
export const events = sqliteTable(
  "events",
  {
    merchantId: text("merchant_id").notNull(),
    id: text("id").notNull(),
    name: text("name"),
    transactionId: text("transaction_id"),
    firedAt: text("fired_at"),
    outcome: text("outcome", { enum: EVENT_OUTCOMES }).notNull(),
    deliveries: integer("deliveries").notNull().default(1),
    firstReceivedAt: text("first_received_at").notNull(),
    processedAt: text("processed_at"),
    detail: text("detail"),
  },
  (t) => [
    primaryKey({ columns: [t.merchantId, t.id] }),
    index("events_transaction").on(t.merchantId, t.transactionId, t.firedAt, t.id),
    // What is waiting, for `GET /v1/pipeline` (0010): few rows are pending at a time, so the partial index stays small.
    index("events_pending").on(t.merchantId).where(sql`${t.outcome} = 'pending'`),
    // Forged deliveries of the last hour per merchant, for the forged-delivery-spike alert (alerts/evaluate.ts).
    index("events_rejected_processed").on(t.merchantId, t.processedAt).where(sql`${t.outcome} = 'rejected'`),
  ],
);

/** `backfilled`: captured before the merchant set its fulfillment URL and found by a batch read; never notified. */
export const FULFILLMENT_STATUSES = ["not_configured", "backfilled", "pending", "delivered", "failed"] as const;
export type FulfillmentStatus = (typeof FULFILLMENT_STATUSES)[number];

/** The fulfilment outbox: at most one row per transaction, written in the same D1 batch as its first capture. */
export const fulfillments = sqliteTable(
  "fulfillments",
  {
    merchantId: text("merchant_id").notNull(),
    transactionId: text("transaction_id").notNull(),
    /** Standard Webhooks `webhook-id`: stable across retries so the merchant can deduplicate. */
    messageId: text("message_id").notNull(),
    status: text("status", { enum: FULFILLMENT_STATUSES }).notNull(),
    attempts: integer("attempts").notNull().default(0),
    lastError: text("last_error"),
    /** While set in the future, one consumer owns the delivery attempt; others back off. */
    leaseUntil: text("lease_until"),
    requestedAt: text("requested_at").notNull(),
    deliveredAt: text("delivered_at"),
  },
  (t) => [primaryKey({ columns: [t.merchantId, t.transactionId] }), index("fulfillments_status").on(t.status, t.requestedAt)],
);

/** Queue messages that failed for good, kept with their last error so they can be redriven. */
export const deadLetters = sqliteTable(
  "dead_letters",
  {
    id: text("id").primaryKey(),
    queue: text("queue").notNull(),
    merchantId: text("merchant_id"),
    body: text("body", { mode: "json" }).notNull(),
    error: text("error"),
    attempts: integer("attempts").notNull(),
    createdAt: text("created_at").notNull().default(nowIso),
    redrivenAt: text("redriven_at"),
  },
  // dead_letters_created: pruning past RETENTION_DAYS (0011; src/retention/prune.ts), merchant or not.
  (t) => [index("dead_letters_merchant").on(t.merchantId, t.createdAt), index("dead_letters_created").on(t.createdAt)],
);

export const BATCH_KINDS = ["sync", "refresh"] as const;
export const BATCH_STATUSES = ["queued", "running", "completed", "failed", "cancelled"] as const;

/** A merchant's batch operation: pull and reconcile many transactions through the batch lane. */
export const batches = sqliteTable(
  "batches",
  {
    id: text("id").primaryKey(),
    merchantId: text("merchant_id")
      .notNull()
      .references(() => merchants.id),
    kind: text("kind", { enum: BATCH_KINDS }).notNull(),
    status: text("status", { enum: BATCH_STATUSES }).notNull(),
    /** `{created_after, created_before}` for sync, `{transaction_ids}` for refresh. */
    params: text("params", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    total: integer("total").notNull().default(0),
    done: integer("done").notNull().default(0),
    failed: integer("failed").notNull().default(0),
    apiCalls: integer("api_calls").notNull().default(0),
    /** Units of work (pages or id chunks) queued but not finished; the batch completes when it reaches 0. */
    outstanding: integer("outstanding").notNull().default(0),
    error: text("error"),
    createdAt: text("created_at").notNull().default(nowIso),
    startedAt: text("started_at"),
    finishedAt: text("finished_at"),
  },
  (t) => [index("batches_merchant").on(t.merchantId, t.createdAt)],
);

/** One pass of the reconciliation cron: what it found stale and how many records the refresh corrected. */
export const reconciliationRuns = sqliteTable(
  "reconciliation_runs",
  {
    id: text("id").primaryKey(),
    startedAt: text("started_at").notNull(),
    found: integer("found").notNull().default(0),
    refreshed: integer("refreshed").notNull().default(0),
    fixed: integer("fixed").notNull().default(0),
    lastUpdateAt: text("last_update_at"),
  },
  // Pruning past RETENTION_DAYS (0011; src/retention/prune.ts).
  (t) => [index("reconciliation_runs_started").on(t.startedAt)],
);

/** Units of batch work already done, so a redelivered or duplicated queue message is applied once. */
export const batchUnits = sqliteTable(
  "batch_units",
  {
    unitId: text("unit_id").primaryKey(),
    batchId: text("batch_id"),
    finishedAt: text("finished_at").notNull(),
  },
  // Pruning once no queue message can name the unit again (0011; src/retention/prune.ts).
  (t) => [index("batch_units_finished").on(t.finishedAt)],
);

/**
 * The event-log backstop's place in each merchant's `GET /events`: everything up to the watermark is committed. The walk
 * goes forward (oldest first) from it; it starts at the newest event when the merchant is registered.
 */
export const eventLogCursors = sqliteTable("event_log_cursors", {
  merchantId: text("merchant_id")
    .primaryKey()
    .references(() => merchants.id),
  /** The newest event id whose effects are committed; null before the first walk has found one. */
  watermarkEventId: text("watermark_event_id"),
  watermarkFiredAt: text("watermark_fired_at"),
  /** Events walked and applied (or found settled) so far, and the Smart Router calls it took. */
  eventsWalked: integer("events_walked").notNull().default(0),
  apiCalls: integer("api_calls").notNull().default(0),
  lastRunAt: text("last_run_at"),
  lastError: text("last_error"),
  updatedAt: text("updated_at").notNull().default(nowIso),
});

/** Every admin action, never a secret: what was done, to what, when, and by which request. */
export const adminAudit = sqliteTable(
  "admin_audit",
  {
    id: text("id").primaryKey(),
    at: text("at").notNull().default(nowIso),
    action: text("action").notNull(),
    target: text("target").notNull(),
    requestId: text("request_id").notNull(),
  },
  (t) => [index("admin_audit_at").on(t.at, t.id)],
);

/** An admin-started re-seal of every sealed secret under the current SECRETS_KEY, walked merchant by merchant. */
export const resealJobs = sqliteTable("reseal_jobs", {
  id: text("id").primaryKey(),
  status: text("status", { enum: ["running", "completed", "failed"] }).notNull(),
  total: integer("total").notNull().default(0),
  done: integer("done").notNull().default(0),
  /** The last merchant id re-sealed: the job resumes after it. */
  cursor: text("cursor"),
  error: text("error"),
  startedAt: text("started_at").notNull().default(nowIso),
  finishedAt: text("finished_at"),
});

/*
 * The timeline of a payment (GET /v1/transactions/{id}/timeline) and the pipeline's figures (GET /v1/pipeline), written
 * in the D1 batch that commits the work they describe (migrations/0010_timeline.sql). Growth is bounded by the
 * retention step (issue 14, src/retention): each table is pruned by its time column past RETENTION_DAYS, through the
 * `(merchant_id, <time>)` index walked per merchant (`merchants CROSS JOIN <table> ON merchant_id = m.id AND <time> < ?`,
 * as webhooks/forged.ts prunes the inbox); nothing else deletes these rows.
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

/** One row per fetch-back of a delivered event (verification/fetch-back.ts), whatever it answered. */
export const fetchBacks = sqliteTable(
  "fetch_backs",
  {
    id: integer("id").primaryKey(),
    merchantId: text("merchant_id").notNull(),
    eventId: text("event_id").notNull(),
    /** When Smart Router answered (or the call was given up). */
    at: text("at").notNull(),
    outcome: text("outcome", { enum: FETCH_BACK_OUTCOMES }).notNull(),
    /** One of verification/fetch-back.ts's FETCH_BACK_VIAS: which calls stood for the event. */
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
 * Every change of a record's status, in commit order: written after the compare-and-set upsert of the same D1 batch
 * (transactions/apply.ts), from what it actually stored. `from_status` is the previous row's `to_status`: null for the
 * first status seen (or when earlier rows were pruned).
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
  (t) => [
    index("transaction_status_changes_transaction").on(t.merchantId, t.transactionId, t.id),
    index("transaction_status_changes_at").on(t.merchantId, t.at),
  ],
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
  (t) => [
    index("fulfillment_attempts_transaction").on(t.merchantId, t.transactionId, t.id),
    index("fulfillment_attempts_at").on(t.merchantId, t.at),
  ],
);

export const ALERT_STATES = ["open", "resolved"] as const;
export const ALERT_NOTIFICATION_TYPES = ["alert.opened", "alert.resolved"] as const;
export const ALERT_NOTIFICATION_STATUSES = ["pending", "delivered", "failed"] as const;

/**
 * Business alerts (alerts/): at most one open alert per merchant, kind and transaction (or none), so evaluating again
 * changes nothing; an alert resolves when its condition no longer holds. The notification columns track the one
 * notification owed to the merchant's alert URL (its opening, or its resolution, which supersedes an undelivered opening).
 */
export const alerts = sqliteTable(
  "alerts",
  {
    id: text("id").primaryKey(),
    merchantId: text("merchant_id")
      .notNull()
      .references(() => merchants.id),
    kind: text("kind").notNull(),
    transactionId: text("transaction_id"),
    state: text("state", { enum: ALERT_STATES }).notNull(),
    detail: text("detail").notNull(),
    openedAt: text("opened_at").notNull(),
    resolvedAt: text("resolved_at"),
    /** When a run last re-evaluated the open alert: runs recheck the least recently checked first. */
    checkedAt: text("checked_at").notNull(),
    notificationType: text("notification_type", { enum: ALERT_NOTIFICATION_TYPES }),
    /** Null when the merchant had no alert URL as the notification came due. */
    notificationStatus: text("notification_status", { enum: ALERT_NOTIFICATION_STATUSES }),
    notificationAttempts: integer("notification_attempts").notNull().default(0),
    /** When the owed notification came due: its retry horizon counts from here. */
    notificationSince: text("notification_since"),
    notificationDueAt: text("notification_due_at"),
    notificationError: text("notification_error"),
  },
  (t) => [
    uniqueIndex("alerts_open_once").on(t.merchantId, t.kind, sql`coalesce(${t.transactionId}, '')`).where(sql`${t.state} = 'open'`),
    index("alerts_merchant_opened").on(t.merchantId, t.openedAt, t.id),
    index("alerts_merchant_state_opened").on(t.merchantId, t.state, t.openedAt, t.id),
    index("alerts_open_checked").on(t.checkedAt).where(sql`${t.state} = 'open'`),
    index("alerts_notification_due").on(t.notificationDueAt).where(sql`${t.notificationStatus} = 'pending'`),
  ],
);

/** Where a watermark scan of the alert rules stopped: the last row's keyset position, so the next run goes on after it. */
export const alertScans = sqliteTable("alert_scans", {
  name: text("name").primaryKey(),
  updatedAt: text("updated_at").notNull(),
  merchantId: text("merchant_id").notNull(),
  transactionId: text("transaction_id").notNull(),
});

/*
 * Retention (issue 14, src/retention, migrations/0011_retention.sql). A transaction's history (its settled inbox rows
 * and its operations) moves to R2 once the transaction has been out of flight and unchanged for RETENTION_DAYS; the
 * transaction row itself and its outbox row stay in D1, so lists, the export and every compare-and-set keep working.
 */

/** Where each merchant's archive walk stands: every transaction up to (updated_at, id) has had its history moved. */
export const retentionCursors = sqliteTable("retention_cursors", {
  merchantId: text("merchant_id")
    .primaryKey()
    .references(() => merchants.id),
  /** The last transaction the walk passed, in `transactions_merchant_updated` order; null before the first object. */
  archivedThroughUpdatedAt: text("archived_through_updated_at"),
  archivedThroughId: text("archived_through_id"),
  /** When a run last gave this merchant its turn: runs serve the least recently served first. */
  lastRunAt: text("last_run_at"),
});

export const ARCHIVE_OBJECT_STATUSES = ["writing", "stored"] as const;

/**
 * One R2 object of archived history (NDJSON, gzip), one merchant's and one UTC day's (of the transactions' last
 * change). `writing` from its claim, with the manifest of the exact rows it holds, until those rows left D1; then
 * `stored`. At most one `writing` object per merchant: claims are exclusive.
 */
export const archiveObjects = sqliteTable(
  "archive_objects",
  {
    id: integer("id").primaryKey(),
    key: text("key").notNull(),
    merchantId: text("merchant_id").notNull(),
    day: text("day").notNull(),
    status: text("status", { enum: ARCHIVE_OBJECT_STATUSES }).notNull(),
    /** The merchant's cursor when the object was claimed, and where the object moves it once stored. */
    fromUpdatedAt: text("from_updated_at"),
    fromId: text("from_id"),
    throughUpdatedAt: text("through_updated_at").notNull(),
    throughId: text("through_id").notNull(),
    /** While `writing`: `{"transactions":[…],"events":[…],"operations":[…]}`, the ids the object holds; null once stored. */
    manifest: text("manifest", { mode: "json" }).$type<ArchiveManifest>(),
    transactions: integer("transactions").notNull(),
    events: integer("events").notNull(),
    operations: integer("operations").notNull(),
    bytes: integer("bytes"),
    createdAt: text("created_at").notNull(),
    storedAt: text("stored_at"),
  },
  (t) => [
    uniqueIndex("archive_objects_key").on(t.key),
    uniqueIndex("archive_objects_one_writing").on(t.merchantId).where(sql`${t.status} = 'writing'`),
  ],
);

export interface ArchiveManifest {
  transactions: string[];
  events: string[];
  operations: string[];
}

/**
 * Which archive objects hold part of a transaction's history, read by `/events` and `/operations`. WITHOUT ROWID in
 * 0011 (drizzle cannot say so): the primary key is the whole row, stored once.
 */
export const archivedHistories = sqliteTable(
  "archived_histories",
  {
    merchantId: text("merchant_id").notNull(),
    transactionId: text("transaction_id").notNull(),
    archiveId: integer("archive_id").notNull(),
  },
  (t) => [primaryKey({ columns: [t.merchantId, t.transactionId, t.archiveId] })],
);

/**
 * The shard directory (issue 14, src/db/shards.ts): which D1 database holds each merchant, assigned at registration to
 * the least full. Read and written on `DB` (shard 0) only; every shard carries the table, as it carries the whole schema.
 * The Smart Router project is claimed here too, so a project belongs to one merchant across every shard.
 */
export const merchantShards = sqliteTable(
  "merchant_shards",
  {
    merchantId: text("merchant_id").primaryKey(),
    shard: integer("shard").notNull(),
    smartRouterProjectId: text("smart_router_project_id").notNull(),
    createdAt: text("created_at").notNull().default(nowIso),
  },
  (t) => [uniqueIndex("merchant_shards_project").on(t.smartRouterProjectId), index("merchant_shards_shard").on(t.shard)],
);
