import { sql } from "drizzle-orm";
import { index, integer, type SQLiteColumn, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { sqlLiterals } from "../bulk";
import { nowIso } from "./columns";
import { merchants } from "./merchants";

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
/** The statuses of a batch still holding one of the merchant's open-batch places (src/batches/batches.ts). */
export const OPEN_BATCH_STATUSES = ["queued", "running"] as const satisfies readonly (typeof BATCH_STATUSES)[number][];
/** `status IN ('queued', 'running')` with the values as literals, so SQLite can use the partial index `batches_open`. */
export const isOpenBatch = (status: SQLiteColumn) => sql`${status} IN (${sqlLiterals(OPEN_BATCH_STATUSES)})`;

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
  (t) => [
    index("batches_merchant").on(t.merchantId, t.createdAt),
    // The open-batch count of every POST /v1/batches (0013): a merchant has at most a few open ones, so it stays small.
    index("batches_open").on(t.merchantId, t.createdAt).where(isOpenBatch(t.status)),
  ],
);

/**
 * A streaming export's slot (src/transactions/export-slots.ts): a merchant holds at most a few unexpired rows. A stream
 * renews its row while it runs and deletes it when it ends; a crashed one's row lapses at `expires_at`.
 */
export const exportLeases = sqliteTable(
  "export_leases",
  {
    id: text("id").primaryKey(),
    merchantId: text("merchant_id")
      .notNull()
      .references(() => merchants.id),
    expiresAt: text("expires_at").notNull(),
    createdAt: text("created_at").notNull().default(nowIso),
  },
  (t) => [index("export_leases_merchant").on(t.merchantId, t.expiresAt)],
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
