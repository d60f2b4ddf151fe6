import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { runAlertChecks } from "../../../src/alerts/scheduled";
import { openDatabase } from "../../../src/db/client";
import { alerts } from "../../../src/db/schema";
import { ADMIN, call } from "../../support/fixtures";
import { eventually, SANDBOX } from "../../support/sandbox";
import { SHARDS, shardedDb } from "../../support/shards";
import { dbOfMerchant, getJson } from "../../support/status-api";

export interface ShownAlert {
  id: string;
  kind: string;
  state: "open" | "resolved";
  transaction_id: string | null;
  opened_at: string;
  resolved_at: string | null;
  acknowledged_at: string | null;
  detail: string;
}

export const HOUR = 3_600_000;
export const MINUTE = 60_000;

/** One run of the cron's alert step at `now` (the scheduled handler's own step, as scheduled.test.ts runs its steps). */
export const checkAlerts = async (now = Date.now()) => {
  for (const shard of SHARDS) await runAlertChecks({ env, db: openDatabase(shard), now });
};

/** Merchants on a shard with a change the refund scan has not read (one not served there waits, as the scan does). */
export const BEHIND_SCAN = `SELECT count(*) AS behind FROM merchants AS m
  LEFT JOIN alert_scans AS s ON s.merchant_id = m.id AND s.name = 'refunded_more_than_captured'
  WHERE EXISTS (SELECT 1 FROM transactions AS t WHERE t.merchant_id = m.id
      AND (t.updated_at, t.id) > (coalesce(s.updated_at, ''), coalesce(s.transaction_id, '')))
    AND NOT EXISTS (SELECT 1 FROM move_marks AS mm WHERE mm.merchant_id = m.id AND mm.state IN ('receiving', 'fenced', 'moved'))`;

/** Merchants with changes the refund scan has not read yet, on every shard. */
export async function behindScan(): Promise<number> {
  let behind = 0;
  for (const shard of SHARDS) behind += (await shard.prepare(BEHIND_SCAN).first<{ behind: number }>())?.behind ?? 0;
  return behind;
}

/**
 * Runs the alert step until the refund scan has read every merchant's changes: what other test files changed is read
 * first. Ends once caught up, or after 100 runs (5,000 merchants' backlogs): a test then fails naming its payment.
 */
export async function scanCaughtUp() {
  for (let run = 0; run < 100 && (await behindScan()) > 0; run++) await checkAlerts();
}

/** The merchant's alerts through `GET /v1/alerts` (every page). */
export async function alertsOf(apiKey: string, state: "open" | "all" = "all"): Promise<ShownAlert[]> {
  const shown: ShownAlert[] = [];
  let cursor: string | null = null;
  // Ends on the last page (next_cursor null); a merchant here has a handful of alerts.
  do {
    const query: string = `state=${state}&limit=100${cursor ? `&cursor=${cursor}` : ""}`;
    const page: { alerts: ShownAlert[]; next_cursor: string | null } = await getJson(`/v1/alerts?${query}`, apiKey);
    shown.push(...page.alerts);
    cursor = page.next_cursor;
  } while (cursor !== null);
  return shown;
}

/**
 * Runs the alert step at `now` until `check` passes on the merchant's alerts, at most `runs` times. The test database is
 * shared by every file, and each run opens at most FOUND_PER_KIND conditions of all merchants (oldest first, a few per
 * merchant): conditions other tests left behind may take the first runs.
 */
export async function checkUntil<T>(apiKey: string, check: (alerts: ShownAlert[]) => T, { now = Date.now(), runs = 10 } = {}) {
  let failure: unknown;
  for (let run = 0; run < runs; run++) {
    await checkAlerts(now);
    try {
      return check(await alertsOf(apiKey));
    } catch (error) {
      failure = error;
    }
  }
  throw failure;
}

/** PATCHes the merchant's alert settings through the admin API. */
export async function setAlertSettings(merchantId: string, alerts: Record<string, unknown> | null) {
  const response = await call(`/admin/merchants/${merchantId}`, { method: "PATCH", headers: ADMIN, body: JSON.stringify({ alerts }) });
  expect(response.status, await response.clone().text()).toBe(200);
  return ((await response.json()) as { merchant: { alerts: Record<string, unknown> } }).merchant;
}

/** Sets the merchant's alert URL through the admin API; answers the alert signing secret the change issued, if any. */
export async function setAlertUrl(merchantId: string, url: string | null) {
  const response = await call(`/admin/merchants/${merchantId}`, {
    method: "PATCH",
    headers: ADMIN,
    body: JSON.stringify({ alerts: { url } }),
  });
  expect(response.status, await response.clone().text()).toBe(200);
  const body = (await response.json()) as { merchant: { alerts: { signing_secret_set: boolean } }; alert_signing_secret?: string };
  return { response, merchant: body.merchant, secret: body.alert_signing_secret };
}

/** Waits until the stored record of the transaction reaches `status` (queue consumers run asynchronously). */
export function storedStatus(merchantId: string, transactionId: string, status: string) {
  return eventually(async () => {
    const row = await shardedDb
      .prepare("SELECT status FROM transactions WHERE merchant_id = ? AND id = ?")
      .bind(merchantId, transactionId)
      .first<{ status: string }>();
    expect(row?.status).toBe(status);
  });
}

/** The requests a sink of the emulator received. */
export async function sinkRequests(name: string) {
  const response = await fetch(`${SANDBOX}/_sandbox/sink/${name}`);
  return ((await response.json()) as { requests: { headers: Record<string, string>; body: string }[] }).requests;
}

/** Makes a sink answer `status` to the next POSTs. */
export async function sinkAnswers(name: string, status: number) {
  const response = await fetch(`${SANDBOX}/_sandbox/sink/${name}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ status }),
  });
  await response.body?.cancel();
}

export const only = (alerts: ShownAlert[], kind: string, transactionId: string | null = null) =>
  alerts.filter((alert) => alert.kind === kind && alert.transaction_id === transactionId);

/** Stores an alert row as a run would have (for tests about reading them, not raising them). */
export async function seedAlert(merchantId: string, overrides: Partial<typeof alerts.$inferInsert> = {}) {
  const openedAt = overrides.openedAt ?? new Date().toISOString();
  const row: typeof alerts.$inferInsert = {
    id: `al_${crypto.randomUUID().replaceAll("-", "")}`,
    merchantId,
    kind: "authorized_not_captured",
    transactionId: `tr_seed${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`,
    state: "open",
    detail: "EUR 10 authorized 30 h ago and not captured.",
    openedAt,
    checkedAt: openedAt,
    ...overrides,
  };
  await (await dbOfMerchant(merchantId)).insert(alerts).values(row);
  return row;
}

/** Marks the merchant as refused by Smart Router, as the batch consumer does on a 401 (src/batches/work.ts). */
export function refuseKey(merchantId: string, refused: boolean) {
  return shardedDb
    .prepare("UPDATE merchants SET smart_router_key_refused_at = ?, smart_router_key_refused_reason = ? WHERE id = ?")
    .bind(refused ? new Date().toISOString() : null, refused ? "Smart Router answered 401" : null, merchantId)
    .run();
}
