import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const MOVE_STATUSES = ["copying", "switching", "cleaning", "completed", "failed"] as const;
export type MoveStatus = (typeof MOVE_STATUSES)[number];

/**
 * A merchant's move to another shard (issue 21, src/moves/), on `DB` only: a job with a state, advanced step by step by
 * `merchant_move` messages in the batch lane, each step a compare-and-set on `step`, so a re-delivered or crashed step
 * resumes. At most one running move per merchant (the partial unique index).
 */
export const merchantMoves = sqliteTable(
  "merchant_moves",
  {
    id: text("id").primaryKey(),
    merchantId: text("merchant_id").notNull(),
    fromShard: integer("from_shard").notNull(),
    toShard: integer("to_shard").notNull(),
    status: text("status", { enum: MOVE_STATUSES }).notNull(),
    /** The step the next message runs; each step moves it on by compare-and-set. */
    step: integer("step").notNull().default(0),
    rowsCopied: integer("rows_copied").notNull().default(0),
    startedAt: text("started_at").notNull(),
    fenceStartedAt: text("fence_started_at"),
    fenceEndedAt: text("fence_ended_at"),
    switchedAt: text("switched_at"),
    finishedAt: text("finished_at"),
    error: text("error"),
    /** The last failed step's error (log-safe): what a move given up by the cron's horizon says it failed of (0025). */
    lastError: text("last_error"),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [uniqueIndex("merchant_moves_one_running").on(t.merchantId).where(sql`${t.status} NOT IN ('completed', 'failed')`)],
);

export const MOVE_MARK_STATES = ["tracking", "fenced", "moved", "receiving"] as const;
export type MoveMarkState = (typeof MOVE_MARK_STATES)[number];

/**
 * On every shard: a merchant being moved off this shard. `tracking`: its writes are logged in `move_changes`; `fenced`:
 * its writes abort (`merchant_fenced`, the triggers of migration 0022); `moved`: inserts and updates abort, deletes
 * (the cleaning) pass. Stays after the move, so a writer that still thinks the merchant lives here can never write here.
 * On the target: `receiving` while a move copies the merchant here (the triggers ignore it: the copy's writes pass, none
 * is logged), so this shard's scheduled work leaves the copies alone (db/fence.ts `servedHere`); gone once it switched.
 */
export const moveMarks = sqliteTable("move_marks", {
  merchantId: text("merchant_id").primaryKey(),
  moveId: text("move_id").notNull(),
  state: text("state", { enum: MOVE_MARK_STATES }).notNull(),
});

/** On the source shard: the key (a JSON array of the primary key) of each row of a tracked merchant written since its mark. */
export const moveChanges = sqliteTable(
  "move_changes",
  {
    seq: integer("seq").primaryKey(),
    merchantId: text("merchant_id").notNull(),
    tbl: text("tbl").notNull(),
    key: text("key").notNull(),
  },
  (t) => [index("move_changes_merchant").on(t.merchantId, t.seq)],
);

/**
 * On the target shard: how far the copy of each table has gone (`cursor`), and (`tbl` '~changes') how far the
 * change log has been applied. Moved in the same D1 batch as the rows it covers, so a page is copied exactly once.
 */
export const moveProgress = sqliteTable(
  "move_progress",
  {
    moveId: text("move_id").notNull(),
    tbl: text("tbl").notNull(),
    /** The last copied row's primary key (a JSON array), or the last applied change's seq; null before the first page. */
    cursor: text("cursor"),
    rows: integer("rows").notNull().default(0),
    done: integer("done", { mode: "boolean" }).notNull().default(false),
    /** The run whose page won the compare-and-set: only its rows are inserted. */
    token: text("token"),
  },
  (t) => [primaryKey({ columns: [t.moveId, t.tbl] })],
);

/**
 * On the target shard: the new id of each copied row of a table keyed by an integer id (ids are per shard, so a copied row
 * takes a new one, in the source's order). WITHOUT ROWID in the migration, so filling it does not move `last_insert_rowid()`.
 */
export const moveRowMap = sqliteTable(
  "move_row_map",
  {
    moveId: text("move_id").notNull(),
    tbl: text("tbl").notNull(),
    sourceId: integer("source_id").notNull(),
    targetId: integer("target_id").notNull(),
  },
  (t) => [primaryKey({ columns: [t.moveId, t.tbl, t.sourceId] })],
);
