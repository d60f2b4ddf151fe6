import type { Database } from "../db/client";
import type { AppEnv } from "../env";
import { evaluateAlerts } from "./evaluate";
import { sendAlertNotifications } from "./notify";

/** The cron's alert step on one shard: every rule for its merchants (bounded), then the alert URL notifications due. */
export async function runAlertChecks({
  env,
  db,
  now,
  fetcher = fetch,
}: {
  env: AppEnv;
  db: Database;
  now: number;
  fetcher?: typeof fetch;
}) {
  const evaluated = await evaluateAlerts({ db, now });
  return { ...evaluated, ...(await sendAlertNotifications({ env, db, now, fetcher })) };
}
