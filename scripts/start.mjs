// `npm start [-- --port 8787] [--quiet] [--no-cron]`: the whole stack locally (Smart Router emulator + wrangler dev with
// local D1, Queues and Durable Objects), a demo merchant wired to an emulator project, a trickle of realistic payments,
// and the Cron Trigger's work once a minute (wrangler dev never fires a Cron Trigger by itself).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { devVarsPath } from "./dev-vars.mjs";
import {
  CRON_TRIGGERS,
  http,
  makePayment,
  openShop,
  pickScenario,
  ROOT,
  shutDown,
  startStack,
  stopOnSignals,
  webhookCredentialWorks,
} from "./stack.mjs";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8787" },
    quiet: { type: "boolean", default: false },
    "no-cron": { type: "boolean", default: false },
    "time-scale": { type: "string", default: "1" },
  },
});

/** The demo merchant's credentials, shown once by the admin API: kept here (git-ignored) so restarts reuse `demo`. */
const SAVED = join(ROOT, ".wrangler", "demo-merchant.json");

/** How often the scheduled work runs locally: deployed it runs every 5 minutes; once a minute shows its effects sooner. */
const CRON_EVERY_MS = 60_000;

let trickle = null;
let cron = null;
// The timers end with the stack: on Ctrl-C here, and by process.exit when a child dies (shutDown in stack.mjs).
stopOnSignals(() => {
  clearInterval(trickle);
  clearInterval(cron);
});

try {
  const stack = await startStack({ name: "start", port: Number(values.port), timeScale: Number(values["time-scale"]) });
  const shop = await demoShop(stack);
  printBanner(stack, shop);
  if (!values.quiet) trickle = startTrickle(shop);
  if (!values["no-cron"] && CRON_TRIGGERS.length > 0) cron = startCron(stack);
} catch (error) {
  await shutDown(1, `npm start failed: ${error.message}`);
}

/** Reuses the saved `demo` merchant when its credentials still work against this database; otherwise registers a new one. */
async function demoShop(stack) {
  const admin = { authorization: `Bearer ${stack.adminToken}` };
  const saved = existsSync(SAVED) ? JSON.parse(readFileSync(SAVED, "utf8")) : null;
  if (saved) {
    const merchant = await http(`${stack.workerUrl}/admin/merchants/${saved.merchant_id}`, { headers: admin });
    const apiKey = await http(`${stack.workerUrl}/v1/transactions?limit=1`, { headers: { authorization: `Bearer ${saved.api_key}` } });
    if (merchant.status === 200 && apiKey.status === 200 && (await webhookCredentialWorks(stack, saved.webhook))) {
      return openShop(stack, { merchantId: saved.merchant_id, existing: saved });
    }
  }
  // The webhook password is shown only at creation: without it `demo` cannot be wired again, so a new id it is.
  const demoTaken = (await http(`${stack.workerUrl}/admin/merchants/demo`, { headers: admin })).status === 200;
  const shop = await openShop(stack, { merchantId: demoTaken ? `demo-${Date.now().toString(36)}` : "demo" });
  writeFileSync(SAVED, `${JSON.stringify(shop.creds, null, 2)}\n`, { mode: 0o600 });
  return shop;
}

function printBanner(stack, shop) {
  const rel = (path) => relative(process.cwd(), path) || path;
  const project = `$SANDBOX/_sandbox/projects/${shop.projectId}`;
  console.log(`
Smart Router Edge is running locally.

  console   ${stack.workerUrl}/console   (sign in with the API key below, or the admin token)
  worker    ${stack.workerUrl}   (status API /v1, admin API /admin, docs ${stack.workerUrl}/docs)
  emulator  ${stack.sandboxUrl}   (Smart Router API, and its control API under /_sandbox/)
  merchant  ${shop.merchantId}, Smart Router project ${shop.projectId}, credentials in ${rel(SAVED)}
  API key   ${shop.creds.api_key}
  logs      ${rel(stack.wranglerLog)}  ${rel(stack.sandboxLog)}
  payments  ${values.quiet ? "none (--quiet): create some with the curl below" : "a new one every ~2 s (--quiet to stop them)"}
  cron      ${cronNote()}

Paste into a shell:
  export SRE=${stack.workerUrl} SANDBOX=${stack.sandboxUrl} SRE_KEY=${shop.creds.api_key}
  export ADMIN_TOKEN=$(grep '^ADMIN_TOKEN=' ${rel(devVarsPath)} | cut -d= -f2-)

  # status API: the latest transactions, then one with its operations and events
  curl -s -H "Authorization: Bearer $SRE_KEY" "$SRE/v1/transactions?limit=5"
  curl -s -H "Authorization: Bearer $SRE_KEY" "$SRE/v1/transactions/tr_…"
  curl -s -H "Authorization: Bearer $SRE_KEY" "$SRE/v1/transactions/tr_…/operations"
  curl -s -H "Authorization: Bearer $SRE_KEY" "$SRE/v1/transactions/tr_…/events"

  # a payment in the emulator: Smart Router fires its webhooks at the worker
  curl -s -X POST ${project}/transactions -H 'content-type: application/json' \\
    -d '{"amount":"42.00","currency":"EUR","card":"4242424242424242"}'
  # its truth, the fulfilment notifications the worker sent, the delivery counters
  curl -s ${project}/truth
  curl -s $SANDBOX/_sandbox/sink/${shop.merchantId}
  curl -s ${project}/counters

  # admin API
  curl -s -H "Authorization: Bearer $ADMIN_TOKEN" $SRE/admin/merchants/${shop.merchantId}
  curl -s -H "Authorization: Bearer $ADMIN_TOKEN" -X POST $SRE/admin/merchants/${shop.merchantId}/api-keys

Ctrl-C stops everything.
`);
}

/** One payment every ~2 s from the realistic mix; one line each. */
function startTrickle(shop) {
  let busy = false;
  return setInterval(async () => {
    if (busy) return;
    busy = true;
    const scenario = pickScenario(Math.random);
    try {
      const payment = await makePayment(shop, scenario, { random: Math.random, pollMs: 500 });
      const time = new Date().toTimeString().slice(0, 8);
      console.log(`${time}  ${payment.tx.id}  ${payment.money.padEnd(12)}  ${scenario.name}`);
      payment.done.catch((error) => console.log(`${time}  ${payment.tx.id}  follow-up failed: ${error.message}`));
    } catch (error) {
      console.log(`trickle: ${error.message}`);
    } finally {
      busy = false;
    }
  }, 2000);
}

function cronNote() {
  if (values["no-cron"]) return "off (--no-cron): run it with curl $SRE/cdn-cgi/local/scheduled";
  if (CRON_TRIGGERS.length === 0) return "none: wrangler.toml has no [triggers] crons";
  return `the scheduled work every minute, now first (--no-cron to stop it); its scheduled.run lines are in the wrangler log`;
}

/**
 * Fires the Cron Trigger through wrangler dev's `/cdn-cgi/local/scheduled` (served by Miniflare whether or not
 * --test-scheduled is given) now and then every CRON_EVERY_MS, one line per run. One run at a time: a run still going when
 * the next is due (many merchants, a slow emulator) makes that one skip. The worker runs every step whatever the cron
 * expression (src/scheduled.ts), so the first of wrangler.toml's is the one passed, as Cloudflare passes it.
 */
function startCron(stack) {
  const expression = CRON_TRIGGERS[0];
  const url = `${stack.workerUrl}/cdn-cgi/local/scheduled?cron=${encodeURIComponent(expression)}`;
  let busy = false;
  const run = async () => {
    const time = new Date().toTimeString().slice(0, 8);
    if (busy) {
      console.log(`${time}  cron  skipped: the previous run is still going`);
      return;
    }
    busy = true;
    const started = Date.now();
    try {
      const answer = await http(url);
      const note =
        answer.status === 200
          ? ""
          : `  ${String(typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body)).slice(0, 200)}`;
      console.log(`${time}  cron  "${expression}" → ${answer.status} in ${Date.now() - started} ms${note}`);
    } catch (error) {
      console.log(`${time}  cron  "${expression}" failed: ${error.message}`);
    } finally {
      busy = false;
    }
  };
  run();
  return setInterval(run, CRON_EVERY_MS);
}
