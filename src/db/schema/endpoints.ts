import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { nowIso } from "./columns";
import { merchants } from "./merchants";

/*
 * Endpoints (src/endpoints, migrations/0017_endpoints.sql): every applied status change of a transaction is a row of
 * `transaction_changes`, numbered per transaction by `transaction_streams`, and one `endpoint_messages` row per
 * subscribed endpoint, all written in the D1 batch of the change itself (src/transactions/stream.ts).
 */

export const ENDPOINT_STATUSES = ["enabled", "paused", "disabled"] as const;
export type EndpointStatus = (typeof ENDPOINT_STATUSES)[number];

/** A merchant's receiver of its transactions' changes (at most 10 per merchant). */
export const endpoints = sqliteTable(
  "endpoints",
  {
    id: text("id").primaryKey(),
    merchantId: text("merchant_id")
      .notNull()
      .references(() => merchants.id),
    url: text("url").notNull(),
    /** The subscribed message types: exact types, or the wildcards `*` and `transaction.*`. */
    events: text("events", { mode: "json" }).$type<string[]>().notNull(),
    description: text("description").notNull().default(""),
    status: text("status", { enum: ENDPOINT_STATUSES }).notNull(),
    /** The `whsec_` signing secret, sealed (security/vault.ts), and the one a rotation replaced while its overlap lasts. */
    secretCiphertext: text("secret_ciphertext").notNull(),
    secretKeyId: text("secret_key_id").notNull(),
    previousSecretCiphertext: text("previous_secret_ciphertext"),
    previousSecretKeyId: text("previous_secret_key_id"),
    previousSecretValidUntil: text("previous_secret_valid_until"),
    /** The first failed attempt since the last 2xx: 3 days of nothing but failures disable the endpoint. */
    failingSince: text("failing_since"),
    disabledAt: text("disabled_at"),
    createdAt: text("created_at").notNull().default(nowIso),
    updatedAt: text("updated_at").notNull().default(nowIso),
  },
  (t) => [
    index("endpoints_merchant_created").on(t.merchantId, t.createdAt, t.id),
    // The alert run's `endpoint_disabled` finder reads disabled endpoints only (few, whatever the number of endpoints).
    index("endpoints_disabled").on(t.merchantId).where(sql`${t.status} = 'disabled'`),
  ],
);

/** Where a transaction's stream stands: its last change's number and status, and whether its first capture was announced. */
export const transactionStreams = sqliteTable(
  "transaction_streams",
  {
    merchantId: text("merchant_id").notNull(),
    transactionId: text("transaction_id").notNull(),
    sequence: integer("sequence").notNull(),
    status: text("status"),
    captured: integer("captured", { mode: "boolean" }).notNull().default(false),
  },
  (t) => [primaryKey({ columns: [t.merchantId, t.transactionId] })],
);

/** One applied status change, numbered from 1 per transaction, with the record as it stood right after it. */
export const transactionChanges = sqliteTable(
  "transaction_changes",
  {
    merchantId: text("merchant_id").notNull(),
    transactionId: text("transaction_id").notNull(),
    sequence: integer("sequence").notNull(),
    previousStatus: text("previous_status"),
    status: text("status").notNull(),
    /** The record's columns the status API presents, and its fulfilment, as JSON (src/transactions/stream.ts). */
    record: text("record").notNull(),
    createdAt: text("created_at").notNull().default(nowIso),
  },
  (t) => [
    primaryKey({ columns: [t.merchantId, t.transactionId, t.sequence] }),
    // Retention prunes changes per merchant by age (src/retention/prune.ts, migrations/0020_endpoint_retention.sql).
    index("transaction_changes_created").on(t.merchantId, t.createdAt),
  ],
);

export const MESSAGE_STATUSES = ["pending", "delivered", "failed"] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

/**
 * One message to one endpoint. `position` orders a transaction's messages to an endpoint (a lane): `2 × sequence`
 * for the change, `2 × sequence + 1` for the `transaction.captured` that follows it. `seq` is the insertion order.
 */
export const endpointMessages = sqliteTable(
  "endpoint_messages",
  {
    seq: integer("seq").primaryKey(),
    /** The `webhook-id`: the same on every attempt and on replay. */
    id: text("id").notNull(),
    merchantId: text("merchant_id").notNull(),
    endpointId: text("endpoint_id").notNull(),
    transactionId: text("transaction_id").notNull(),
    sequence: integer("sequence").notNull(),
    position: integer("position").notNull(),
    type: text("type").notNull(),
    status: text("status", { enum: MESSAGE_STATUSES }).notNull(),
    attempts: integer("attempts").notNull().default(0),
    lastHttpStatus: integer("last_http_status"),
    lastError: text("last_error"),
    firstAttemptAt: text("first_attempt_at"),
    /** When the next attempt is due (the creation, then the retry schedule's); the sweep nudges lanes past it. */
    nextAttemptAt: text("next_attempt_at").notNull(),
    leaseUntil: text("lease_until"),
    createdAt: text("created_at").notNull().default(nowIso),
    deliveredAt: text("delivered_at"),
  },
  (t) => [
    uniqueIndex("endpoint_messages_lane").on(t.endpointId, t.transactionId, t.position),
    index("endpoint_messages_created").on(t.endpointId, t.createdAt, t.seq),
    index("endpoint_messages_due").on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
  ],
);

export const REPLAY_STATUSES = ["queued", "running", "completed", "cancelled"] as const;
export type ReplayStatus = (typeof REPLAY_STATUSES)[number];

/** A replay job: an endpoint's messages created in [since, until), resent in order per transaction, page by page. */
export const endpointReplays = sqliteTable(
  "endpoint_replays",
  {
    id: text("id").primaryKey(),
    merchantId: text("merchant_id").notNull(),
    endpointId: text("endpoint_id").notNull(),
    since: text("since").notNull(),
    until: text("until").notNull(),
    /** Only these types; null: every type. */
    types: text("types", { mode: "json" }).$type<string[]>(),
    dryRun: integer("dry_run", { mode: "boolean" }).notNull(),
    status: text("status", { enum: REPLAY_STATUSES }).notNull(),
    total: integer("total").notNull(),
    sent: integer("sent").notNull().default(0),
    failed: integer("failed").notNull().default(0),
    /** Where the walk stands: the last message done, as `[created_at, seq]` JSON; null before the first page. */
    cursor: text("cursor"),
    error: text("error"),
    createdAt: text("created_at").notNull().default(nowIso),
    finishedAt: text("finished_at"),
  },
  (t) => [index("endpoint_replays_endpoint").on(t.merchantId, t.endpointId, t.createdAt)],
);
