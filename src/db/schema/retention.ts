import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { merchants } from "./merchants";

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
    /** While `writing`: `{"transactions":[…],"events":[…],"operations":[…],"deliveries":[…],…}`, the ids the object holds; null once stored. */
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

/** The rows an object holds; the timeline's lists (issue 21) are absent from objects claimed before they were archived. */
export interface ArchiveManifest {
  transactions: string[];
  events: string[];
  operations: string[];
  /** Webhook deliveries as `[event_id, delivery_id]`. */
  deliveries?: [string, string][];
  fetchBacks?: number[];
  statusChanges?: number[];
  /** Per transaction, how many of the oldest entries of its record's status history the object holds (0030). */
  statusHistory?: [string, number][];
  fulfillmentAttempts?: number[];
}

/**
 * Which archive objects held part of a transaction's history, before 0034 put their names in the record
 * (`transactions.archive_names`). WITHOUT ROWID in 0011 (drizzle cannot say so). Emptied by 0035, dropped by the next
 * release's migration: no code reads or writes it.
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

export const ARCHIVE_PAGE_KINDS = ["dead_letters", "audit"] as const;
export type ArchivePageKind = (typeof ARCHIVE_PAGE_KINDS)[number];

/**
 * One R2 object of rows archived page by page (issue 21, src/retention/pages.ts, migrations/0021_archive_pages.sql):
 * dead letters per merchant (`scope`, '' for letters naming none) on their shard, or admin audit entries (`scope` '') on
 * `DB`. `writing` from its claim, with the exact ids it holds, until those rows left D1; then `stored`. At most one
 * `writing` page per kind and scope: a merchant's claims are exclusive.
 */
export const archivePages = sqliteTable(
  "archive_pages",
  {
    id: integer("id").primaryKey(),
    kind: text("kind", { enum: ARCHIVE_PAGE_KINDS }).notNull(),
    scope: text("scope").notNull(),
    key: text("key").notNull(),
    status: text("status", { enum: ARCHIVE_OBJECT_STATUSES }).notNull(),
    /** While `writing`: the ids of the rows the page holds; null once stored. */
    ids: text("ids", { mode: "json" }).$type<string[]>(),
    /** The oldest and newest row of the page, by (time, id). */
    firstAt: text("first_at").notNull(),
    firstId: text("first_id").notNull(),
    lastAt: text("last_at").notNull(),
    lastId: text("last_id").notNull(),
    entries: integer("entries").notNull(),
    bytes: integer("bytes"),
    createdAt: text("created_at").notNull(),
    storedAt: text("stored_at"),
  },
  (t) => [
    uniqueIndex("archive_pages_key").on(t.key),
    uniqueIndex("archive_pages_one_writing").on(t.kind, t.scope).where(sql`${t.status} = 'writing'`),
    index("archive_pages_listing").on(t.kind, t.scope, t.firstAt, t.firstId),
  ],
);
