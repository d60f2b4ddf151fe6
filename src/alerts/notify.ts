import { and, eq, sql } from "drizzle-orm";
import { inList } from "../db/bulk";
import type { Database } from "../db/client";
import { servedHere } from "../db/fence";
import type { MerchantRow } from "../db/rows";
import { alerts, merchants } from "../db/schema";
import { type AppConfig, type AppEnv, appConfig } from "../env";
import { mapConcurrent } from "../lib/concurrency";
import { log } from "../lib/log";
import { alertSigningSecretsOf } from "../merchants/alert-secret";
import { postSignedWebhook } from "../outbound/client";
import { fulfillmentUrlAllowed } from "../outbound/url";
import { policyDelaySeconds, type RetryPolicy } from "../queue/backoff";
import { type AlertRow, presentAlert } from "./store";

/**
 * Alert notifications are retried on later cron runs (every 5 minutes) for a day from when they came due: waits of
 * 5, 10, 20, 40, 80 and 160 minutes, then every 4 hours (about 10 attempts); past the horizon the notification is given
 * up, recorded as `failed` with its last error. The alert itself stays readable at `GET /v1/alerts`.
 */
export const ALERT_NOTIFICATION_RETRY: RetryPolicy = {
  name: "alert notification",
  horizonMs: 24 * 3_600_000,
  delaySeconds: (attempt) => Math.min(300 * 2 ** (attempt - 1), 4 * 3_600),
};

/** Notifications sent per run at most (a larger backlog goes over the next runs), this many at once. */
export const NOTIFICATIONS_PER_RUN = 50;
const CONCURRENCY = 4;
/** A claimed notification is left alone by overlapping runs for this long: one sender at a time. */
const LEASE_MS = 60_000;

type Outcome = "delivered" | "retrying" | "given_up";

/** The error of a notification held for want of an alert secret: it names the operator's way out. */
export const NO_ALERT_SECRET =
  "no alert signing secret (the alert URL was set before alerts had their own); POST /admin/merchants/{id}/alert-secret issues one";

/** What the cron's alert work on one shard is given; `fetcher` lets tests stand in for the alert URL. */
export interface AlertStepInput {
  env: AppEnv;
  db: Database;
  now: number;
  fetcher?: typeof fetch;
}

/**
 * Sends the alert notifications due at `now` (at most NOTIFICATIONS_PER_RUN, oldest due first), each claimed first with
 * compare-and-set (its due time moved past the lease), so overlapping runs never send one twice at once. Signed per
 * Standard Webhooks with the merchant's alert signing secret (both during a rotation), never the fulfilment secret,
 * with a `webhook-id` stable across retries: `{alert id}_opened` or `{alert id}_resolved`. The configuration is read
 * only when something is due, so evaluating alerts never waits on it.
 */
export async function sendAlertNotifications({ env, db, now, fetcher = fetch }: AlertStepInput) {
  const nowIso = new Date(now).toISOString();
  // A merchant not served here (db/fence.ts) is notified by the shard that serves it: never from both.
  const isDue = and(eq(alerts.notificationStatus, "pending"), sql`${alerts.notificationDueAt} <= ${nowIso}`, servedHere(alerts.merchantId));
  const due = await db.select({ id: alerts.id }).from(alerts).where(isDue).orderBy(alerts.notificationDueAt).limit(NOTIFICATIONS_PER_RUN);
  if (due.length === 0) return { alert_notifications_delivered: 0, alert_notifications_retrying: 0, alert_notifications_given_up: 0 };
  const config = appConfig(env);
  const claimed = await db
    .update(alerts)
    .set({ notificationDueAt: new Date(now + LEASE_MS).toISOString(), notificationAttempts: sql`${alerts.notificationAttempts} + 1` })
    .where(
      and(
        isDue,
        inList(
          alerts.id,
          due.map((row) => row.id),
        ),
      ),
    )
    .returning();
  const owners = await db
    .select()
    .from(merchants)
    .where(inList(merchants.id, [...new Set(claimed.map((row) => row.merchantId))]));
  const byId = new Map(owners.map((row) => [row.id, row]));
  const outcomes = await mapConcurrent(claimed, CONCURRENCY, (row) =>
    deliverAlertNotification({ db, config, row, merchant: byId.get(row.merchantId), now, fetcher }),
  );
  const count = (outcome: Outcome) => outcomes.filter((o) => o === outcome).length;
  return {
    alert_notifications_delivered: count("delivered"),
    alert_notifications_retrying: count("retrying"),
    alert_notifications_given_up: count("given_up"),
  };
}

/** One attempt at one claimed notification, and what it leaves in the row. */
async function deliverAlertNotification({
  db,
  config,
  row,
  merchant,
  now,
  fetcher,
}: {
  db: Database;
  config: AppConfig;
  row: AlertRow;
  merchant: MerchantRow | undefined;
  now: number;
  fetcher: typeof fetch;
}): Promise<Outcome> {
  const type = row.notificationType;
  if (type === null) {
    // Written by no code of ours (a pending notification always has its type), but never left to be claimed for ever.
    await db
      .update(alerts)
      .set({ notificationStatus: "failed", notificationDueAt: null, notificationError: "no notification type" })
      .where(eq(alerts.id, row.id));
    return "given_up";
  }
  // Only the notification that was claimed: a resolution written meanwhile replaced it and is due on its own.
  const settle = (changes: Partial<typeof alerts.$inferInsert>) =>
    db
      .update(alerts)
      .set(changes)
      .where(and(eq(alerts.id, row.id), eq(alerts.notificationType, type), eq(alerts.notificationStatus, "pending")));
  const url = merchant?.alertSettings?.url ?? null;
  if (!merchant || url === null) {
    await settle({ notificationStatus: "failed", notificationDueAt: null, notificationError: "no alert URL configured any more" });
    return "given_up";
  }
  const error = fulfillmentUrlAllowed(url, config.ALLOW_LOOPBACK_FULFILLMENT_URLS)
    ? await postNotification({ config, merchant, row, type, url, now, fetcher })
    : // A URL stored before the rules of outbound/url.ts (or a loopback one where they are off) is never called.
      "alert url is not allowed (https with a DNS host name only); PATCH the merchant's alerts.url";
  if (error === null) {
    await settle({ notificationStatus: "delivered", notificationDueAt: null, notificationError: null });
    return "delivered";
  }
  const since = Date.parse(row.notificationSince ?? row.openedAt);
  if (now - since >= ALERT_NOTIFICATION_RETRY.horizonMs * config.RETRY_SCHEDULE_SCALE) {
    log("warn", "alert.notification_given_up", {
      merchant_id: row.merchantId,
      alert_id: row.id,
      type,
      attempts: row.notificationAttempts,
      error,
    });
    await settle({ notificationStatus: "failed", notificationDueAt: null, notificationError: error });
    return "given_up";
  }
  const waitSeconds = policyDelaySeconds(ALERT_NOTIFICATION_RETRY, row.notificationAttempts, { scale: config.RETRY_SCHEDULE_SCALE });
  await settle({ notificationDueAt: new Date(now + waitSeconds * 1000).toISOString(), notificationError: error });
  return "retrying";
}

/** POSTs one signed notification; null when the merchant answered 2xx, else why the attempt failed (never the answer's body). */
async function postNotification({
  config,
  merchant,
  row,
  type,
  url,
  now,
  fetcher,
}: {
  config: AppConfig;
  merchant: MerchantRow;
  row: AlertRow;
  type: "alert.opened" | "alert.resolved";
  url: string;
  now: number;
  fetcher: typeof fetch;
}): Promise<string | null> {
  const payload = JSON.stringify({
    type,
    timestamp: new Date(now).toISOString(),
    data: { merchant_id: merchant.id, alert: presentAlert(row) },
  });
  const messageId = `${row.id}_${type === "alert.opened" ? "opened" : "resolved"}`;
  let secrets: string[];
  try {
    secrets = await alertSigningSecretsOf(config, merchant, now);
  } catch {
    // A SECRETS_KEY rotation gone wrong fails this merchant's attempt only, never its neighbours'.
    return "the merchant's alert signing secret could not be opened";
  }
  // An alert URL set before alerts had their own secret: never signed with the fulfilment secret, so not sent until one is issued.
  if (secrets.length === 0) return NO_ALERT_SECRET;
  const result = await postSignedWebhook({ url, messageId, payload, secrets, now, receiver: "alert url", fetcher });
  return result.kind === "delivered" ? null : result.error;
}
