import { getTableColumns, sql } from "drizzle-orm";
import { index, integer, primaryKey, type SQLiteColumn, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { FETCH_BACK_VIAS } from "../../smart-router/fetch-back";
import { IN_FLIGHT_STATUSES } from "../../smart-router/status";
import { sqlLiterals } from "../bulk";
import { merchants } from "./merchants";
import { FETCH_BACK_OUTCOMES } from "./timeline";

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
    /**
     * How many status changes were applied to the record (0023): the endpoints' `sequence` of its latest change, kept
     * here so a merchant without an endpoint writes no stream rows (transactions/stream.ts).
     */
    statusChanges: integer("status_changes").notNull().default(0),
    /** The operation history (0030, db/operation-history.ts): a JSON array, each operation once; NULL once archived. */
    operationHistory: text("operation_history"),
    /**
     * Its status changes, oldest first (0030, db/status-history.ts): a JSON array of `{at, from, to, event_id, event_name,
     * read_at}`; the archive strips the ones it took.
     */
    statusHistory: text("status_history"),
    /**
     * The archive objects holding part of its history (0034, retention/history.ts): a JSON array of their names, each
     * the R2 key within the merchant's prefix (`history/{merchant}/{name}.ndjson.gz`), the same on every shard; listed by
     * the archive's finish only, in the batch that marks the object stored. NULL while nothing is archived.
     */
    archiveNames: text("archive_names"),
  },
  (t) => [
    primaryKey({ columns: [t.merchantId, t.id] }),
    index("transactions_merchant_updated").on(t.merchantId, t.updatedAt, t.id),
    index("transactions_merchant_status_updated").on(t.merchantId, t.status, t.updatedAt, t.id),
    // The list's `payment_type` filter (0010): without it a rare payment type would walk every row of the merchant.
    index("transactions_merchant_payment_type_updated").on(t.merchantId, t.paymentType, t.updatedAt, t.id),
    // No `(status, updated_at)` index across merchants (0033 dropped it): the list names transactions_merchant_status_updated
    // (transactions/queries.ts) and the refund scan walks each merchant's changes (alerts/evaluate.ts).
    // Reconciliation walks each merchant's in-flight records least recently looked at first (a few per merchant per run).
    index("transactions_reconcile").on(t.merchantId, lastLookedAt(t), t.id).where(isInFlight(t.status)),
    // The export's keyset walk by creation time (0011): julianday() puts Smart Router's RFC 3339 times, whatever their
    // offset or fractional digits, on one UTC scale.
    index("transactions_merchant_created").on(t.merchantId, sql`julianday(${t.createdAt})`, t.id),
  ],
);

const { operationHistory: _operations, statusHistory: _statuses, archiveNames: _archived, ...record } = getTableColumns(transactions);
/** The record's columns but its histories (KBs that only the history reads want) and archive names: what reads of a record select. */
export const recordColumns = record;

/**
 * Every operation Smart Router reported for a transaction, deduplicated by its id: written before 0030 only (the record's
 * `operation_history` holds them since). Emptied by 0035, dropped by the next release's migration: no code reads or
 * writes it; its columns are the shape of an operation as the history reads it (db/rows.ts `OperationRow`).
 */
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
    /**
     * The timeline fold (0024): the delivery that brought the event first (received at `first_received_at`, never a
     * duplicate); null when no webhook did (the event log) or it came before 0024 (its row is in webhook_deliveries).
     */
    firstDeliveryId: text("first_delivery_id"),
    /** The fetch-back that settled the event (its final outcome), as a fetch_backs row would hold it; null when none did. */
    fetchBackAt: text("fetch_back_at"),
    fetchBackOutcome: text("fetch_back_outcome", { enum: FETCH_BACK_OUTCOMES }),
    fetchBackVia: text("fetch_back_via", { enum: FETCH_BACK_VIAS }),
    fetchBackApiCalls: integer("fetch_back_api_calls"),
    fetchBackPaceWaitMs: integer("fetch_back_pace_wait_ms"),
    fetchBackDetail: text("fetch_back_detail"),
  },
  (t) => [
    // Led by the event id (0029, WITHOUT ROWID): a key led by merchant_id is a covering range of the merchant's whole inbox,
    // which the planner took over the indexes below; this one serves only lookups of one event.
    primaryKey({ columns: [t.id, t.merchantId] }),
    // No index by first receipt (0032): the pipeline counts first deliveries in pipeline_minutes (timeline.ts).
    index("events_transaction").on(t.merchantId, t.transactionId, t.firedAt, t.id),
    // What is waiting, for `GET /v1/pipeline` (0010): few rows are pending at a time, so the partial index stays small.
    index("events_pending").on(t.merchantId).where(sql`${t.outcome} = 'pending'`),
    // Forged deliveries of the last hour per merchant, for the forged-delivery-spike alert (alerts/evaluate.ts).
    index("events_rejected_processed").on(t.merchantId, t.processedAt).where(sql`${t.outcome} = 'rejected'`),
  ],
);

/**
 * The merchant's own references of each transaction (0015, src/transactions/references.ts): its invoice_id, name and
 * metadata `order_id`/`reference`, text of 1-200 characters, one row each. `GET /v1/transactions?reference=` seeks the
 * primary key by (merchant_id, reference); an apply replaces a record's rows by (merchant_id, transaction_id).
 */
export const transactionReferences = sqliteTable(
  "transaction_references",
  {
    merchantId: text("merchant_id").notNull(),
    reference: text("reference").notNull(),
    transactionId: text("transaction_id").notNull(),
  },
  (t) => [
    // No index by transaction (0031): a write removes the references it replaces by their key (references.ts).
    primaryKey({ columns: [t.merchantId, t.reference, t.transactionId] }),
  ],
);
