import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { merchants } from "./merchants";

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
    /** When the merchant acknowledged the alert (0015, `POST /v1/alerts/{id}/acknowledge`), which resolved it. */
    acknowledgedAt: text("acknowledged_at"),
  },
  (t) => [
    uniqueIndex("alerts_open_once").on(t.merchantId, t.kind, sql`coalesce(${t.transactionId}, '')`).where(sql`${t.state} = 'open'`),
    index("alerts_merchant_opened").on(t.merchantId, t.openedAt, t.id),
    index("alerts_merchant_state_opened").on(t.merchantId, t.state, t.openedAt, t.id),
    index("alerts_open_checked").on(t.checkedAt).where(sql`${t.state} = 'open'`),
    index("alerts_notification_due").on(t.notificationDueAt).where(sql`${t.notificationStatus} = 'pending'`),
  ],
);

/**
 * Where a watermark scan of the alert rules stopped, per merchant (0033): the last record read in the merchant's
 * (updated_at, id) order, so the next run goes on after it. The row of merchant `''` says the scan has started on the
 * shard: a merchant without a row of its own (registered since) has all its records ahead. WITHOUT ROWID in the migration.
 */
export const alertScans = sqliteTable(
  "alert_scans",
  {
    merchantId: text("merchant_id").notNull(),
    name: text("name").notNull(),
    updatedAt: text("updated_at").notNull(),
    transactionId: text("transaction_id").notNull(),
    /** When a run last read the merchant's changes: runs take the least recently read first. */
    scannedAt: text("scanned_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.merchantId, t.name] })],
);
