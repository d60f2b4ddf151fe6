import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { ALERT_STATES } from "./alerts";

/**
 * Each shard's size as the cron measured it (issue 21, src/db/shard-growth.ts): at most one sample per shard and hour
 * (the first run of the hour writes it), kept 8 days, so `GET /admin/shards` projects days to full from the last 7
 * days' growth. On `DB` (shard 0) only, keyed by shard index.
 */
export const shardSizeSamples = sqliteTable(
  "shard_size_samples",
  {
    shard: integer("shard").notNull(),
    /** The UTC hour of the sample, `YYYY-MM-DDTHH`: its key, so a second run in the same hour writes nothing. */
    hour: text("hour").notNull(),
    sampledAt: text("sampled_at").notNull(),
    bytes: integer("bytes").notNull(),
  },
  (t) => [primaryKey({ columns: [t.shard, t.hour] })],
);

/**
 * The operator's own alerts (`GET /admin/alerts`, src/alerts/admin-alerts.ts), on `DB` only: at most one open alert per
 * kind and subject (e.g. `shard_capacity` of `DB_SHARD_1:90`), so checking again changes nothing; an alert resolves
 * when a later check finds its condition cleared.
 */
export const adminAlerts = sqliteTable(
  "admin_alerts",
  {
    id: text("id").primaryKey(),
    kind: text("kind").notNull(),
    /** What the alert is about, unique among the open alerts of its kind (a shard binding and a threshold). */
    subject: text("subject").notNull(),
    state: text("state", { enum: ALERT_STATES }).notNull(),
    detail: text("detail").notNull(),
    openedAt: text("opened_at").notNull(),
    resolvedAt: text("resolved_at"),
    checkedAt: text("checked_at").notNull(),
  },
  (t) => [
    uniqueIndex("admin_alerts_open_once").on(t.kind, t.subject).where(sql`${t.state} = 'open'`),
    index("admin_alerts_opened").on(t.openedAt, t.id),
    index("admin_alerts_state_opened").on(t.state, t.openedAt, t.id),
  ],
);
