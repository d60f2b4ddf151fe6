import { evaluateAlerts } from "./evaluate";
import { type AlertStepInput, sendAlertNotifications } from "./notify";

/** The cron's alert step on one shard: every rule for its merchants (bounded), then the alert URL notifications due. */
export async function runAlertChecks({ env, db, now, fetcher = fetch }: AlertStepInput) {
  const evaluated = await evaluateAlerts({ db, now });
  return { ...evaluated, ...(await sendAlertNotifications({ env, db, now, fetcher })) };
}
