import { and, desc, eq, type SQL, sql } from "drizzle-orm";
import { z } from "zod";
import { insertJsonRows, type JsonRow, runBatch } from "../db/bulk";
import type { Database } from "../db/client";
import { servedHere } from "../db/fence";
import { afterRow } from "../db/keyset";
import type { AlertRow } from "../db/rows";
import { type AlertSettings, alerts, fulfillments, merchants } from "../db/schema";
import { ApiError } from "../errors";
import { decodePageCursor, keysetPage } from "../lib/cursor";
import type { AlertKind } from "./rules";

export type { AlertRow };

/** The alert as `GET /v1/alerts`, `GET /admin/alerts` and the alert URL's notifications show it (contract.md). */
export function presentAlert(
  // Admin alerts are never acknowledged: they have no such column.
  row: Pick<AlertRow, "id" | "kind" | "state" | "transactionId" | "openedAt" | "resolvedAt" | "detail"> & {
    acknowledgedAt?: string | null;
  },
) {
  return {
    id: row.id,
    kind: row.kind,
    state: row.state,
    transaction_id: row.transactionId,
    opened_at: row.openedAt,
    resolved_at: row.resolvedAt,
    acknowledged_at: row.acknowledgedAt ?? null,
    detail: row.detail,
  };
}

/** `?state=` of `GET /v1/alerts`: the open alerts, or every alert ever raised. */
export const ALERT_LIST_STATES = ["open", "all"] as const;
export type AlertListState = (typeof ALERT_LIST_STATES)[number];

const alertCursor = z.strictObject({
  v: z.literal(1),
  s: z.enum(ALERT_LIST_STATES),
  o: z.string().min(1).max(64),
  i: z.string().min(1).max(64),
});

/** Where a page of alerts starts: the list's state (the cursor's, else the query's, else `open`) and the row after which. */
export function alertListPosition(query: { state?: AlertListState; cursor?: string }) {
  const after = query.cursor === undefined ? undefined : decodePageCursor(query.cursor, alertCursor);
  if (after && query.state !== undefined && query.state !== after.s) {
    throw new ApiError(
      "invalid_cursor",
      "cursor belongs to a list with a different state; repeat the first request's state or leave it out",
    );
  }
  return { state: after?.s ?? query.state ?? "open", after: after && [after.o, after.i] };
}

/** One page of alerts from `limit + 1` rows read, most recently opened first, and the cursor after it. */
export function alertPage<Row extends Parameters<typeof presentAlert>[0]>(rows: Row[], limit: number, state: AlertListState) {
  const { page, nextCursor } = keysetPage(rows, limit, (row) => ({ v: 1, s: state, o: row.openedAt, i: row.id }));
  return { alerts: page.map(presentAlert), next_cursor: nextCursor };
}

/**
 * One page of the merchant's alerts, most recently opened first (ties by id, descending), and the cursor of the next.
 * The cursor carries the `state` of the first request; a different one with it is an `invalid_cursor` 400, since it
 * would mix two lists. Served by `alerts_merchant_state_opened` (open) or `alerts_merchant_opened` (all), read backwards.
 */
export async function listAlerts({
  db,
  merchantId,
  query,
}: {
  db: Database;
  merchantId: string;
  query: { state?: AlertListState; cursor?: string; limit: number };
}) {
  const { state, after } = alertListPosition(query);
  const rows = await db
    .select()
    .from(alerts)
    .where(
      and(
        eq(alerts.merchantId, merchantId),
        state === "open" ? eq(alerts.state, "open") : undefined,
        afterRow("desc", [alerts.openedAt, alerts.id], after),
      ),
    )
    .orderBy(desc(alerts.openedAt), desc(alerts.id))
    .limit(query.limit + 1);
  return alertPage(rows, query.limit, state);
}

/** A condition found holding, for which no alert is open yet. */
export interface AlertOpening {
  merchantId: string;
  kind: AlertKind;
  transactionId: string | null;
  detail: string;
  settings: AlertSettings | null;
}

/** The notification columns of an alert that owes `type` now: pending when the merchant has an alert URL, else none. */
function owedNotification(settings: AlertSettings | null, type: "alert.opened" | "alert.resolved", now: number) {
  const url = settings?.url ?? null;
  const at = new Date(now).toISOString();
  return {
    notification_type: url ? type : null,
    notification_status: url ? "pending" : null,
    notification_attempts: 0,
    notification_since: url ? at : null,
    notification_due_at: url ? at : null,
    notification_error: null,
  } satisfies JsonRow;
}

/**
 * Opens alerts, all in one statement. A condition that already has an open alert (another run got there first) is
 * skipped by the `alerts_open_once` unique index, so opening twice opens once. Returns the ids actually opened.
 */
export function openAlerts({ openings, now }: { openings: readonly AlertOpening[]; now: number }): SQL[] {
  const at = new Date(now).toISOString();
  const rows = openings.map((opening) => ({
    id: `al_${crypto.randomUUID().replaceAll("-", "")}`,
    merchant_id: opening.merchantId,
    kind: opening.kind,
    transaction_id: opening.transactionId,
    state: "open",
    detail: opening.detail,
    opened_at: at,
    resolved_at: null,
    checked_at: at,
    ...owedNotification(opening.settings, "alert.opened", now),
  }));
  return insertJsonRows(alerts, rows, sql`ON CONFLICT DO NOTHING RETURNING id`);
}

/** An open alert whose condition no longer holds. */
export interface AlertResolution {
  id: string;
  settings: AlertSettings | null;
}

/**
 * Resolves open alerts (an alert resolved meanwhile is left as it is). The resolution is the notification now owed: it
 * replaces an opening not delivered yet, since it carries the whole alert, `opened_at` included.
 */
export function resolveAlerts({ resolutions, now }: { resolutions: readonly AlertResolution[]; now: number }): SQL[] {
  if (resolutions.length === 0) return [];
  const at = new Date(now).toISOString();
  const rows = JSON.stringify(
    resolutions.map((resolution) => ({ id: resolution.id, ...owedNotification(resolution.settings, "alert.resolved", now) })),
  );
  // json_each of row values (id and notification columns), joined in an UPDATE: not an id list.
  return [
    sql`UPDATE ${alerts} SET state = 'resolved', resolved_at = ${at}, checked_at = ${at},
        notification_type = j.value ->> '$.notification_type', notification_status = j.value ->> '$.notification_status',
        notification_attempts = 0, notification_since = j.value ->> '$.notification_since',
        notification_due_at = j.value ->> '$.notification_due_at', notification_error = NULL
      FROM json_each(${rows}) AS j
      WHERE ${alerts.id} = j.value ->> '$.id' AND ${alerts.state} = 'open'
      RETURNING ${alerts.id}`,
  ];
}

/** An open alert whose condition still holds, with its detail of now. */
export interface AlertConfirmation {
  id: string;
  detail: string;
}

/** Open alerts whose condition still holds: checked now, with the detail of now (counts and ages move). */
export function confirmAlerts({ confirmations, now }: { confirmations: readonly AlertConfirmation[]; now: number }): SQL[] {
  if (confirmations.length === 0) return [];
  // json_each of row values (id and detail), joined in an UPDATE: not an id list.
  return [
    sql`UPDATE ${alerts} SET detail = j.value ->> '$.detail', checked_at = ${new Date(now).toISOString()}
      FROM json_each(${JSON.stringify(confirmations)}) AS j
      WHERE ${alerts.id} = j.value ->> '$.id' AND ${alerts.state} = 'open'`,
  ];
}

/**
 * The open alerts a run rechecks: the `limit` least recently checked (served by `alerts_open_checked`), of merchants
 * served here (db/fence.ts: a move's copy of an alert is its source's to recheck).
 */
export function alertsToRecheck({ db, limit }: { db: Database; limit: number }) {
  return db
    .select({ id: alerts.id, merchantId: alerts.merchantId, kind: alerts.kind, transactionId: alerts.transactionId })
    .from(alerts)
    .where(and(eq(alerts.state, "open"), servedHere(alerts.merchantId)))
    .orderBy(alerts.checkedAt)
    .limit(limit);
}

/** The only kind a merchant acknowledges: the others resolve when their condition clears, which no acknowledgement changes. */
export const ACKNOWLEDGEABLE_KINDS: readonly AlertKind[] = ["fulfillment_failing"];

/**
 * The merchant acknowledges an open `fulfillment_failing` alert: every notification given up for good (dead-lettered)
 * until now counts as handled, and the alert resolves (its `alert.resolved` notification owed), in one D1 batch whose
 * compare-and-set on the open alert decides: of two acknowledgements, or one racing a run's resolution, one wins.
 * Notifications still being retried keep the condition, so a later run opens a new alert while they fail. Acknowledging
 * again answers the alert as it is; another merchant's alert is a 404.
 */
export async function acknowledgeAlert({
  db,
  merchantId,
  alertId,
  now,
}: {
  db: Database;
  merchantId: string;
  alertId: string;
  now: number;
}) {
  const found = () =>
    db
      .select()
      .from(alerts)
      .where(and(eq(alerts.id, alertId), eq(alerts.merchantId, merchantId)))
      .get();
  const row = await found();
  if (!row) throw new ApiError("not_found", `alert ${alertId} not found`);
  if (!ACKNOWLEDGEABLE_KINDS.includes(row.kind as AlertKind)) {
    throw new ApiError(
      "conflict",
      `a ${row.kind} alert resolves by itself when its condition clears; only ${ACKNOWLEDGEABLE_KINDS.join(", ")} alerts are acknowledged`,
    );
  }
  if (row.state === "resolved" && row.acknowledgedAt !== null) return presentAlert(row);
  if (row.state === "resolved")
    throw new ApiError("conflict", `alert ${alertId} already resolved at ${row.resolvedAt}: nothing to acknowledge`);
  const owner = await db.select({ settings: merchants.alertSettings }).from(merchants).where(eq(merchants.id, merchantId)).get();
  const notification = owedNotification(owner?.settings ?? null, "alert.resolved", now);
  const at = new Date(now).toISOString();
  await runBatch(db.$client, [
    sql`UPDATE ${alerts} SET state = 'resolved', resolved_at = ${at}, checked_at = ${at}, acknowledged_at = ${at},
        notification_type = ${notification.notification_type}, notification_status = ${notification.notification_status},
        notification_attempts = 0, notification_since = ${notification.notification_since},
        notification_due_at = ${notification.notification_due_at}, notification_error = NULL
      WHERE ${alerts.id} = ${alertId} AND ${alerts.state} = 'open'`,
    // Only if this acknowledgement resolved the alert (the statement above): served by `fulfillments_failed_unacknowledged`.
    sql`UPDATE ${fulfillments} SET failure_acknowledged_at = ${at}
      WHERE merchant_id = ${merchantId} AND status = 'failed' AND failure_acknowledged_at IS NULL
        AND EXISTS (SELECT 1 FROM ${alerts} WHERE ${alerts.id} = ${alertId} AND ${alerts.acknowledgedAt} = ${at})`,
  ]);
  const after = await found();
  if (after?.acknowledgedAt === null || after === undefined) {
    throw new ApiError("conflict", `alert ${alertId} was resolved meanwhile (its condition cleared): nothing to acknowledge`);
  }
  return presentAlert(after);
}
