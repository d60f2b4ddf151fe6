import { and, desc, eq, inArray } from "drizzle-orm";
import type { Database } from "../db/client";
import { afterRow } from "../db/keyset";
import { adminAlerts } from "../db/schema";
import { type AlertListState, alertListPosition, alertPage } from "./store";

/** The kinds of the operator's own alerts (`GET /admin/alerts`): a shard past 80, 90 or 95 % of its capacity. */
export const ADMIN_ALERT_KINDS = ["shard_capacity"] as const;
export type AdminAlertKind = (typeof ADMIN_ALERT_KINDS)[number];

/**
 * One page of the admin alerts in the shape of `GET /v1/alerts` (`transaction_id` always null), most recently opened
 * first, with the same cursor rules. Served by `admin_alerts_state_opened` (open) or `admin_alerts_opened` (all).
 */
export async function listAdminAlerts({ db, query }: { db: Database; query: { state?: AlertListState; cursor?: string; limit: number } }) {
  const { state, after } = alertListPosition(query);
  const rows = await db
    .select()
    .from(adminAlerts)
    .where(
      and(state === "open" ? eq(adminAlerts.state, "open") : undefined, afterRow("desc", [adminAlerts.openedAt, adminAlerts.id], after)),
    )
    .orderBy(desc(adminAlerts.openedAt), desc(adminAlerts.id))
    .limit(query.limit + 1);
  return alertPage(
    rows.map((row) => ({ ...row, transactionId: null })),
    query.limit,
    state,
  );
}

/** What a check of one kind found: the subjects whose condition holds (with what to say now) and those it found cleared. */
export interface AdminAlertCheck {
  holding: readonly { subject: string; detail: string }[];
  cleared: readonly string[];
}

/**
 * Applies a check in one D1 batch: opens an alert for each holding subject with none open (the `admin_alerts_open_once`
 * unique index skips the others, so a condition that keeps holding is one alert, not one per run), refreshes the detail of
 * the open ones, and resolves the open alerts of the cleared subjects (compare-and-set on `open`). Answers the counts.
 */
export async function settleAdminAlerts({
  db,
  kind,
  check,
  now,
}: {
  db: Database;
  kind: AdminAlertKind;
  check: AdminAlertCheck;
  now: number;
}) {
  const at = new Date(now).toISOString();
  const open = and(eq(adminAlerts.kind, kind), eq(adminAlerts.state, "open"));
  const opening = check.holding.map(({ subject, detail }) => ({
    id: `aa_${crypto.randomUUID().replaceAll("-", "")}`,
    kind,
    subject,
    state: "open" as const,
    detail,
    openedAt: at,
    checkedAt: at,
  }));
  const confirm = check.holding.map(({ subject, detail }) =>
    db
      .update(adminAlerts)
      .set({ detail, checkedAt: at })
      .where(and(open, eq(adminAlerts.subject, subject))),
  );
  const resolve = db
    .update(adminAlerts)
    .set({ state: "resolved", resolvedAt: at, checkedAt: at })
    .where(and(open, inArray(adminAlerts.subject, [...check.cleared])))
    .returning({ id: adminAlerts.id });
  if (opening.length === 0) return { opened: 0, resolved: check.cleared.length === 0 ? 0 : (await resolve).length };
  const insert = db.insert(adminAlerts).values(opening).onConflictDoNothing().returning({ id: adminAlerts.id });
  const [opened, resolved] = await db.batch([insert, resolve, ...confirm]);
  return { opened: opened.length, resolved: resolved.length };
}
