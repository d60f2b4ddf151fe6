// `npm run chaos [-- --payments 2000] [--seed N] [--reading NAME] [--outage SECONDS] [--never-sent RATE]`: the whole local
// stack under fault injection, with the emulator playing one reading of smart-router.md's silences (sandbox/readings.ts;
// default "default"). `--outage`: the API answers 503 to everything for that long from the start while webhooks keep
// arriving (the fulfilment sink down for the first half), with the retry schedule scaled so its horizon is 60× the
// outage. `--never-sent`: that share of webhooks is never sent and no sync batch runs: the event-log backstop must find
// them. Then a
// reconciliation pass and a sync batch, then the proof: every transaction equals the emulator's truth, fulfilments equal
// captured payments exactly, no forged event applied. Prints the figures; exits 1 on any difference.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { readingNames, readingPatch } from "../sandbox/readings.ts";
import {
  compareAll,
  drivePayments,
  http,
  listServiceTransactions,
  mapConcurrent,
  openShop,
  progressBar,
  queryLocalD1,
  seededRandom,
  shutDown,
  sleep,
  startStack,
  statusApi,
  stopOnSignals,
  table,
  waitForQuiet,
} from "./stack.mjs";

const { values } = parseArgs({
  options: {
    payments: { type: "string", default: "2000" },
    // wrangler dev serves some tens of webhooks per second here; each payment makes about four deliveries.
    rate: { type: "string", default: "8" },
    seed: { type: "string", default: String(Date.now() % 100_000) },
    port: { type: "string", default: "8787" },
    reading: { type: "string", default: "default" },
    outage: { type: "string", default: "0" },
    "never-sent": { type: "string", default: "0" },
  },
});
const outageMs = Number(values.outage) * 1000;
const neverSent = Number(values["never-sent"]);
if (!readingNames.includes(values.reading)) {
  console.error(`unknown --reading ${values.reading}; one of: ${readingNames.join(", ")}`);
  process.exit(2);
}
const readings = readingPatch(values.reading);
const count = Number(values.payments);
const seed = Number(values.seed);

// Emulated delays ×0.05: APMs complete in 150 ms, dispute steps take 250 ms, webhook retries start after 6 s.
const TIME_SCALE = 0.05;
const CHAOS = {
  duplicate_rate: 0.3,
  max_extra_delay_ms: 40_000, // × TIME_SCALE: up to 2 s of reordering
  drop_rate: neverSent > 0 ? neverSent : 0.05,
  forge_rate: 0.02,
  api_5xx_rate: 0.1,
  api_429_rate: 0.05,
};
const CONSUMER_FAILURE_RATE = "0.05";
// Reconciliation refreshes records untouched for 15 s (production: 30 min), so the pass below can run right after the storm.
const RECONCILE_AFTER_MINUTES = "0.25";
const RECONCILE_AFTER_MS = 15_000;
// Reconciliation takes at most 100 records per merchant per run (src/reconciliation/reconciliation.ts); chaos has one merchant.
const RECONCILE_PER_RUN = 100;
// The production horizon is 3 days; scaled so it is 60× the outage (the issue's bar), never above production.
const HORIZON_S = 3 * 24 * 3600;
const RETRY_SCHEDULE_SCALE = outageMs > 0 ? String(Math.min(1, (60 * outageMs) / 1000 / HORIZON_S)) : "1";
// Time limits of the phases after the storm, so the whole run stays under 10 minutes on a 2-core machine.
const DRAIN_MS = 90_000;
const RECONCILE_MS = 120_000;
const SYNC_MS = 120_000;
const FULFILMENT_MS = 60_000;

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;
const say = (line) => console.log(`[${elapsed().padStart(5)}] ${line}`);

stopOnSignals();
try {
  const stack = await startStack({
    name: "chaos",
    port: Number(values.port),
    timeScale: TIME_SCALE,
    persistTo: "chaos-state",
    frozen: true,
    // A fetch-back 404 is asked again after 5 s (production: 30 s), within the drain phase below.
    vars: {
      CHAOS_CONSUMER_FAILURE_RATE: CONSUMER_FAILURE_RATE,
      RECONCILE_AFTER_MINUTES,
      FETCH_BACK_RECHECK_SECONDS: "5",
      RETRY_SCHEDULE_SCALE,
    },
    say,
  });
  const runStart = new Date();
  const shop = await openShop(stack, { merchantId: `chaos-${Date.now().toString(36)}`, fast: true, settings: { chaos: CHAOS, readings } });
  const keys = [shop.creds.api_key];
  for (let i = 0; i < 15; i++)
    keys.push((await stack.admin(`/admin/merchants/${shop.merchantId}/api-keys`, { method: "POST" })).api_key.key);
  const status = statusApi(stack, keys);
  say(
    `${count} payments (seed ${seed}, reading ${values.reading}) for ${shop.merchantId}: 30% duplicate deliveries, up to 2 s reordering, 5% dropped, 2% forged, ` +
      `10% API 5xx, 5% API 429, ${Number(CONSUMER_FAILURE_RATE) * 100}% of consumer batches crash`,
  );

  // 1. The storm (and the outage, from its start).
  let healedAt = null;
  const cronTimer = outageMs > 0 || neverSent > 0 ? setInterval(() => triggerCron(stack).catch(() => undefined), 30_000) : null;
  if (outageMs > 0) {
    await shop.settings({ chaos: { api_5xx_rate: 1 } });
    await stack.sandbox(`/_sandbox/sink/${shop.merchantId}`, { method: "PUT", body: { status: 503 } });
    say(
      `outage: the API answers 503 to everything for ${values.outage} s, the fulfilment sink for the first half (retry scale ${RETRY_SCHEDULE_SCALE})`,
    );
    setTimeout(() => {
      stack.sandbox(`/_sandbox/sink/${shop.merchantId}`, { method: "PUT", body: { status: 200 } }).catch(() => undefined);
    }, outageMs / 2);
    setTimeout(() => {
      shop.settings({ chaos: { api_5xx_rate: CHAOS.api_5xx_rate } }).then(() => {
        healedAt = Date.now();
        say("outage over: the API answers again");
      });
    }, outageMs);
  }
  const run = await drivePayments(shop, {
    count,
    random: seededRandom(seed),
    perSecond: Number(values.rate),
    pollMs: 100,
    onProgress: progressBar("payments"),
  });
  for (const failure of run.failures.slice(0, 10)) say(`driver: ${failure}`);
  say(`${run.payments.length} payments created and driven through their lifecycles`);
  const quiet = await waitForQuiet(shop, 180_000);
  say(quiet ? "emulator quiet: every delivery made" : "warning: the emulator still has deliveries pending after 180 s");
  const truth = await shop.truth();
  const phases = [];
  const matching = async (label) => {
    const { wrong } = compareAll(truth.transactions, await listServiceTransactions(status));
    const missing = wrong.filter((w) => w.diff[0] === "missing").length;
    phases.push({
      phase: label,
      matching: truth.transactions.length - wrong.length,
      behind: wrong.length - missing,
      missing,
      at: elapsed(),
    });
    return wrong.length;
  };

  // 2. Let the queues drain: until the service has not changed for 10 s (messages in backoff may still be waiting).
  while (outageMs > 0 && healedAt === null) await sleep(1000);
  let convergedAt = null;
  const drainStart = Date.now();
  let lastChange = Date.now();
  let previous = -1;
  while (Date.now() - lastChange < 10_000 && Date.now() - drainStart < DRAIN_MS) {
    const { wrong } = compareAll(truth.transactions, await listServiceTransactions(status));
    if (wrong.length !== previous) {
      previous = wrong.length;
      lastChange = Date.now();
    }
    if (wrong.length === 0) {
      convergedAt = Date.now();
      break;
    }
    await sleep(1000);
  }
  if (cronTimer) clearInterval(cronTimer);
  await matching(outageMs > 0 ? "after the webhooks and the heal" : "after the webhooks");
  if (healedAt !== null) {
    say(
      convergedAt ? `converged ${((convergedAt - healedAt) / 1000).toFixed(0)} s after the heal` : "not converged within the drain phase",
    );
  }
  say(`after the webhooks: ${phases[0].matching}/${truth.transactions.length} match`);

  // 3. Reconciliation as the Cron Trigger runs it (500 records a run), once records are older than RECONCILE_AFTER_MINUTES.
  await sleep(Math.max(0, lastChange + RECONCILE_AFTER_MS + 1000 - Date.now()));
  const reconciliation = { runs: 0, found: 0, refreshed: 0, fixed: 0 };
  const seenRuns = new Set((await stack.admin("/admin/reconciliation/runs")).runs.map((run) => run.id));
  for (const deadline = Date.now() + RECONCILE_MS; Date.now() < deadline; ) {
    await triggerCron(stack);
    const runRow = await reconciliationDone(stack, deadline, seenRuns);
    reconciliation.runs++;
    reconciliation.found += runRow.found;
    reconciliation.refreshed += runRow.refreshed;
    reconciliation.fixed += runRow.fixed;
    if (runRow.found < RECONCILE_PER_RUN) break;
  }
  await sleep(2000);
  const r = reconciliation;
  await matching(
    `after reconciliation (${r.runs} run${r.runs === 1 ? "" : "s"}: ${r.found} found, ${r.refreshed} refreshed, ${r.fixed} fixed)`,
  );
  say(phases.at(-1).phase);

  // 4. A sync batch over the run: payments whose every webhook was dropped are unknown to reconciliation, though the
  // event-log backstop (each cron run above) finds them. The never-sent run proves it: no sync batch there.
  if (neverSent === 0) {
    const sync = await syncBatch(status, runStart);
    await sleep(2000);
    await matching(sync.note);
    say(sync.note);
  }

  // 5. Fulfilments: wait until the sink has what it should, then the final verdict.
  const captured = new Set(truth.events.filter((e) => e.name === "transaction.captured").map((e) => e.transaction_id));
  let fulfilment = fulfilmentFigures(await shop.sink(), captured);
  for (const deadline = Date.now() + FULFILMENT_MS; !fulfilment.exact && Date.now() < deadline; ) {
    await sleep(2000);
    fulfilment = fulfilmentFigures(await shop.sink(), captured);
  }

  const records = await listServiceTransactions(status);
  const forgedIds = new Set((await shop.deliveries()).filter((d) => d.forged).map((d) => d.event_id));
  const eventsOf = new Map(truth.transactions.map((t) => [t.id, new Set()]));
  for (const event of truth.events) eventsOf.get(event.transaction_id)?.add(event.id);
  let forgedListed = 0;
  let foreignListed = 0;
  await mapConcurrent(truth.transactions, 16, async (tx) => {
    const events = await status(`/v1/transactions/${tx.id}/events`);
    for (const event of events.status === 200 ? events.body.events : []) {
      if (forgedIds.has(event.id)) forgedListed++;
      else if (!eventsOf.get(tx.id)?.has(event.id)) foreignListed++;
    }
  });
  const { rows, wrong } = compareAll(truth.transactions, records);
  const inbox = await forgedInInbox(stack, shop.merchantId, forgedIds);
  const deadLetters = (await stack.admin(`/admin/dead-letters?merchant=${shop.merchantId}`)).dead_letters.length;
  const crashes = (readFileSync(stack.wranglerLog, "utf8").match(/chaos: injected consumer failure/g) ?? []).length;
  const { counters } = await shop.counters();
  const [walk] = await queryLocalD1(
    stack,
    `SELECT events_walked, api_calls FROM event_log_cursors WHERE merchant_id = '${shop.merchantId}'`,
  );

  // 6. The figures.
  const d = counters.deliveries;
  const api = counters.api.sandbox;
  const scenarios = new Set(run.payments.map((p) => p.scenario.name)).size;
  console.log(`
chaos run: ${count} payments over ${scenarios} lifecycles, ${truth.events.length} Smart Router events, seed ${seed}, reading ${values.reading}${outageMs > 0 ? `, ${values.outage} s API outage` : ""}${neverSent > 0 ? `, ${neverSent * 100}% never sent` : ""}
faults:    ${d.duplicated} duplicate deliveries · ${d.dropped} dropped · ${d.forged} forged · ${d.retries} webhook retries
           ${api.injected_5xx} API 5xx · ${api.injected_429} API 429 (injected) + ${api.rate_limited} real 429 · ${crashes} consumer batches crashed (log)
work:      ${d.attempts} deliveries made, ${api.requests} Smart Router API calls by the worker
backstop:  ${walk?.events_walked ?? 0} events walked in the event log with ${walk?.api_calls ?? 0} API calls (${walk?.events_walked ? (walk.api_calls / walk.events_walked).toFixed(3) : "n/a"} per event)

${table(
  [
    { key: "phase", title: "phase", left: true },
    { key: "matching", title: `matching / ${truth.transactions.length}` },
    { key: "behind", title: "behind" },
    { key: "missing", title: "unknown" },
    { key: "at", title: "at" },
  ],
  phases,
)}

final state per status (status API):
${table(
  [
    { key: "status", title: "final status", left: true },
    { key: "truth", title: "in truth" },
    { key: "matching", title: "matching" },
    { key: "mismatched", title: "mismatched" },
    { key: "missing", title: "missing" },
  ],
  rows,
)}
`);
  const checks = [
    {
      check: "transactions equal to the truth (status, every amount)",
      expected: truth.transactions.length,
      found: truth.transactions.length - wrong.length,
    },
    { check: "  lost (missing in the service)", expected: 0, found: wrong.filter((w) => w.diff[0] === "missing").length },
    { check: "  wrong status or amount", expected: 0, found: wrong.filter((w) => w.diff[0] !== "missing").length },
    { check: "fulfilments (distinct webhook-id) = captured payments", expected: captured.size, found: fulfilment.fulfilled },
    { check: "  captured payments never fulfilled", expected: 0, found: fulfilment.missing },
    { check: "  payments fulfilled twice", expected: 0, found: fulfilment.twice },
    { check: "  fulfilled without a capture", expected: 0, found: fulfilment.uncaptured },
    { check: "forged events listed on a transaction", expected: 0, found: forgedListed },
    { check: "forged events applied (D1 event inbox)", expected: 0, found: inbox.applied },
    { check: "events listed on a transaction they are not of", expected: 0, found: foreignListed },
    { check: "dead letters", expected: 0, found: deadLetters },
    { check: "payment driver errors", expected: 0, found: run.failures.length },
  ];
  console.log(
    table(
      [
        { key: "check", title: "check", left: true },
        { key: "expected", title: "expected" },
        { key: "found", title: "found" },
        { key: "ok", title: "", left: true },
      ],
      checks.map((c) => ({ ...c, ok: c.expected === c.found ? "✓" : "✗" })),
    ),
  );
  for (const { truth: t, record, diff } of wrong.slice(0, 10)) {
    const detail = diff[0] === "missing" ? "missing" : diff.map((f) => `${f}: truth ${t[f]} / service ${record[f]}`).join(", ");
    console.log(`  ✗ ${t.id} (${t.name}): ${detail}`);
  }
  console.log(
    `\nforged: ${forgedIds.size} forged event ids delivered: ${inbox.rejected} rejected by fetch-back (404), ${inbox.pending} still retrying their fetch-back, ${inbox.applied} applied` +
      `\nfulfilment notifications: ${fulfilment.posts} POSTs received (retries of one webhook-id included)`,
  );
  const failed = checks.filter((c) => c.expected !== c.found).length;
  const duration = Math.round((Date.now() - started) / 1000);
  console.log(
    `\n${failed === 0 ? "✓ nothing lost, nothing applied twice, nothing forged applied" : `✗ ${failed} checks differ`}` +
      ` · duration ${Math.floor(duration / 60)}m${String(duration % 60).padStart(2, "0")}s` +
      `${duration < 600 ? "" : " (over the 10-minute target)"}`,
  );
  await shutDown(failed === 0 ? 0 : 1);
} catch (error) {
  await shutDown(1, `npm run chaos failed: ${error.stack ?? error.message}`);
}

/** One Cron Trigger run, as wrangler dev starts it. */
async function triggerCron(stack) {
  const trigger = await http(`${stack.workerUrl}/cdn-cgi/local/scheduled?cron=${encodeURIComponent("*/5 * * * *")}`);
  if (trigger.status !== 200) throw new Error(`scheduled trigger → ${trigger.status} ${JSON.stringify(trigger.body)}`);
}

/** Waits for a run not in `seen` to refresh everything it found (or the deadline); answers its row and adds it to `seen`. */
async function reconciliationDone(stack, deadline, seen) {
  for (;;) {
    const [latest] = (await stack.admin("/admin/reconciliation/runs")).runs;
    if (latest && !seen.has(latest.id) && (latest.refreshed >= latest.found || Date.now() > deadline)) {
      seen.add(latest.id);
      return latest;
    }
    if (Date.now() > deadline + 10_000) throw new Error("the Cron Trigger started no reconciliation run");
    await sleep(1000);
  }
}

/** Starts a sync batch over the run's creation window and waits for it; a service without /v1/batches is reported, not fatal. */
async function syncBatch(status, runStart) {
  const created = await status("/v1/batches", {
    body: {
      kind: "sync",
      created_after: new Date(runStart.getTime() - 60_000).toISOString(),
      created_before: new Date(Date.now() + 60_000).toISOString(),
    },
  });
  if (created.status === 404) return { note: "sync batch skipped: this service has no POST /v1/batches yet" };
  if (created.status !== 202) throw new Error(`POST /v1/batches → ${created.status} ${JSON.stringify(created.body)}`);
  let { batch } = created.body;
  for (const deadline = Date.now() + SYNC_MS; !["completed", "failed", "cancelled"].includes(batch.status) && Date.now() < deadline; ) {
    await sleep(1000);
    batch = (await status(`/v1/batches/${batch.id}`)).body.batch;
  }
  return {
    note: `after a sync batch (${batch.status}: ${batch.done}/${batch.total} done, ${batch.failed} failed, ${batch.api_calls} API calls)`,
  };
}

/** Notifications per transaction in the sink, by distinct webhook-id (a retried notification keeps its id). */
function fulfilmentFigures(requests, captured) {
  const ids = new Map();
  for (const request of requests) {
    const tx = request.json?.data?.transaction?.id;
    if (!tx) continue;
    const set = ids.get(tx) ?? new Set();
    set.add(request.headers["webhook-id"]);
    ids.set(tx, set);
  }
  let fulfilled = 0;
  let twice = 0;
  let uncaptured = 0;
  for (const [tx, set] of ids) {
    if (!captured.has(tx)) uncaptured++;
    else fulfilled++;
    if (set.size > 1) twice++;
  }
  const missing = [...captured].filter((tx) => !ids.has(tx)).length;
  return { fulfilled, twice, uncaptured, missing, posts: requests.length, exact: missing === 0 && twice === 0 && uncaptured === 0 };
}

/** What the service's event inbox recorded for the forged ids, straight from local D1. */
async function forgedInInbox(stack, merchantId, forgedIds) {
  if (forgedIds.size === 0) return { rejected: 0, pending: 0, applied: 0 };
  const list = [...forgedIds].map((id) => `'${id.replace(/[^A-Za-z0-9_]/g, "")}'`).join(",");
  const rows = await queryLocalD1(
    stack,
    `SELECT outcome, COUNT(*) AS n FROM events WHERE merchant_id = '${merchantId}' AND id IN (${list}) GROUP BY outcome`,
  );
  const by = Object.fromEntries(rows.map((row) => [row.outcome, row.n]));
  // `pending`: its fetch-back met a 5xx/429 and is being retried; only `applied`/`stale` would mean it was taken as real.
  return { rejected: by.rejected ?? 0, pending: by.pending ?? 0, applied: (by.applied ?? 0) + (by.stale ?? 0) + (by.ignored ?? 0) };
}
