import { openDatabase } from "../db/client";
import type { AppEnv } from "../env";
import { evaluateAlerts } from "./evaluate";
import { sendAlertNotifications } from "./notify";

/** The cron's alert step: every rule evaluated for every merchant (bounded), then the alert URL notifications due. */
export async function runAlertChecks(env: AppEnv, now: number, fetcher: typeof fetch = fetch) {
  const db = openDatabase(env.DB);
  const evaluated = await evaluateAlerts(db, now);
  return { ...evaluated, ...(await sendAlertNotifications(env, db, now, fetcher)) };
}
