// `npm run chaos [-- --payments 2000] [--seed N] [--reading NAME] [--outage SECONDS] [--never-sent RATE] [--shard-down SECONDS]
// [--flood N]`: the whole local
// stack under fault injection, with the emulator playing one reading of smart-router.md's silences (sandbox/readings.ts;
// default "default"). `--outage`: the API answers 503 to everything for that long from the start while webhooks keep
// arriving (the fulfilment sink down for the first half), with the retry schedule scaled so its horizon is 60× the
// outage. `--never-sent`: that share of webhooks is never sent and no sync batch runs: the event-log backstop must find
// them. `--shard-down` (issue 20): two merchants, one on each shard, and DB_SHARD_1 (the shard without the directory)
// fails for that long mid-storm (its tables renamed away in the local SQLite file, then back): deliveries answered per
// shard during the fault, the healthy merchant's delivery → applied lag before and during it, and the time after the
// heal until both merchants equal the truth; any 500 answered fails the run. `--flood` (issue 20): two merchants, the
// flooded one (A) with a Smart Router quota of 300 rpm; a third of the way into the storm, N forged deliveries with A's
// real webhook credential over 90 s: their answers (200 / 429 + Retry-After), A's Smart Router calls per forged delivery,
// the parking (sampled every second), the other merchant's delivery → applied lag before and during the flood, and the
// time after the flood until both merchants equal the truth. Then a
// reconciliation pass and a sync batch, then the proof: every transaction equals the emulator's truth, fulfilments equal
// captured payments exactly, no forged event applied. In every mode each merchant's changes also stream to two
// endpoints on the emulator's sinks (scripts/lib-streams.mjs, issue 22): per transaction the `*` endpoint's messages
// reproduce the recorded status changes in order and end on the truth, `transaction.captured` once, the filtered
// endpoint gets exactly its types, nothing is sent out of order, and a replay of a slice resends exactly its messages.
// Prints the figures; exits 1 on any difference.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { readingNames, readingPatch } from "../sandbox/readings.ts";
import { countAnswers, floodCalls, forgedFetchCalls, parkingFigures, sendFlood, startFloodSampler, verifyWaits } from "./lib-flood.mjs";
import { breakShard, healShard, shardFileOf } from "./lib-shard-fault.mjs";
import { FIRST_ATTEMPT_FAILURES, openEndpoints, printStreams, streamsAfterRun } from "./lib-streams.mjs";
import {
  compareAll,
  D1_SHARDS,
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
    "shard-down": { type: "string", default: "0" },
    flood: { type: "string", default: "0" },
  },
});
const shardDownMs = Number(values["shard-down"]) * 1000;
if (!(shardDownMs >= 0)) {
  console.error(`--shard-down takes seconds, not ${values["shard-down"]}`);
  process.exit(2);
}
const floodCount = Number(values.flood);
if (!(Number.isInteger(floodCount) && floodCount >= 0)) {
  console.error(`--flood takes a number of forged deliveries, not ${values.flood}`);
  process.exit(2);
}
// One fault at a time: each has its window, and the other merchant's lag is measured against it.
if (floodCount > 0 && shardDownMs > 0) {
  console.error("--flood and --shard-down each need the run to themselves");
  process.exit(2);
}
// A shard fault needs a merchant on each side of it: one on DB (healthy, it holds the directory) and one on DB_SHARD_1.
// A flood needs a merchant beside the flooded one, to see whether it is slowed.
const MERCHANTS = shardDownMs > 0 || floodCount > 0 ? 2 : 1;
if (shardDownMs > 0 && !D1_SHARDS.includes("DB_SHARD_1")) {
  console.error("--shard-down needs DB_SHARD_1 in wrangler.toml");
  process.exit(2);
}
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
// Reconciliation takes at most 100 records per merchant per run (src/reconciliation/reconciliation.ts); a run with fewer
// found (summed over the shards' runs) took every stale record.
const RECONCILE_PER_RUN = 100;
// The production horizon is 3 days; scaled so it is 60× the outage (the issue's bar), never above production.
const HORIZON_S = 3 * 24 * 3600;
const RETRY_SCHEDULE_SCALE = outageMs > 0 ? String(Math.min(1, (60 * outageMs) / 1000 / HORIZON_S)) : "1";
// Time limits of the phases after the storm, so the whole run stays under 10 minutes on a 2-core machine.
// A shard fault leaves the queue's own retries (backed off while the shard failed) to come back after the heal: longer.
const DRAIN_MS = shardDownMs > 0 || floodCount > 0 ? 240_000 : 90_000;
// The fault starts a third of the way into the storm, so the healthy merchant has deliveries before it and during it.
const FAULT_AFTER_SHARE = 1 / 3;
// The healthy merchant's records are listed this often during the run, to see when each final state was written.
const PROBE_EVERY_MS = 1000;
// The probe stops by itself after this long, whatever happens to the run.
const PROBE_MAX_MS = 30 * 60_000;
const HEAL_WAIT_MS = shardDownMs + 10 * 60_000;
const RECONCILE_MS = 120_000;
const SYNC_MS = 120_000;
const FULFILMENT_MS = 60_000;
// The flood (issue 20's measurement): its forged deliveries go out over this long, this many in flight at once, to a
// merchant whose Smart Router quota (and so backlog limit: 10 minutes of it, backlog.ts) is FLOOD_SANDBOX_RPM.
const FLOOD_SECONDS = 90;
const FLOOD_CONCURRENCY = 16;
const FLOOD_SANDBOX_RPM = 300;
// Horizon of the wait for the admitted forged ids to be rejected: the contract's 15 minutes after the flood.
const FLOOD_SETTLE_MS = 15 * 60_000;
// The contract's bar: Smart Router calls per forged delivery over a flood, and queue operations per waiting message a minute.
const FLOOD_CALLS_PER_FORGED = 0.1;
const QUEUE_OPS_PER_WAITING_MINUTE = 1;
// A delivery of the other merchant applied later than this during the flood is the issue's symptom (60 s and more).
const SLOWED_MS = 60_000;

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
  // One merchant (the default run), or two with --shard-down: registration puts each on the least-full shard, so in this
  // fresh stack the first lands on DB and the second on DB_SHARD_1 (checked below, not assumed).
  const base = `chaos-${Date.now().toString(36)}`;
  const shops = [];
  for (let i = 0; i < MERCHANTS; i++) {
    const merchantId = MERCHANTS === 1 ? base : `${base}-${i}`;
    const shop = await openShop(stack, { merchantId, fast: true, settings: { chaos: CHAOS, readings } });
    const keys = [shop.creds.api_key];
    for (let k = 0; k < 15; k++)
      keys.push((await stack.admin(`/admin/merchants/${shop.merchantId}/api-keys`, { method: "POST" })).api_key.key);
    const status = statusApi(stack, keys);
    // Issue 22: every change of the run streamed to two endpoints (scripts/lib-streams.mjs), opened before the storm.
    const endpoints = await openEndpoints({ stack, status, merchantId: shop.merchantId });
    shops.push({ shop, status, endpoints, shard: 0, binding: "DB" });
  }
  if (MERCHANTS > 1) {
    const ids = shops.map((s) => `'${s.shop.merchantId}'`).join(",");
    const placed = await queryLocalD1(stack, `SELECT merchant_id, shard FROM merchant_shards WHERE merchant_id IN (${ids})`);
    for (const s of shops) {
      s.shard = placed.find((row) => row.merchant_id === s.shop.merchantId)?.shard ?? -1;
      s.binding = D1_SHARDS[s.shard] ?? "?";
    }
  }
  const label = (s) => (MERCHANTS === 1 ? "" : `${s.binding} ${s.shop.merchantId}: `);
  const healthy = shops.find((s) => s.binding === "DB") ?? shops[0];
  const failing = shardDownMs > 0 ? shops.find((s) => s.binding === "DB_SHARD_1") : null;
  let shardFile = null;
  if (shardDownMs > 0) {
    if (!failing || healthy === failing) {
      throw new Error(`the merchants did not land one per shard: ${shops.map((s) => `${s.shop.merchantId} → ${s.binding}`).join(", ")}`);
    }
    shardFile = shardFileOf(stack.persistArgs[1], failing.shop.merchantId);
    if (!shardFile) throw new Error(`no local D1 file holds ${failing.shop.merchantId}`);
    // The healthy merchant's row in the same file would mean the fault hits both: no isolation left to measure.
    if (shardFileOf(stack.persistArgs[1], healthy.shop.merchantId) === shardFile) throw new Error("both merchants are in one D1 file");
    say(`merchants: ${healthy.shop.merchantId} on DB, ${failing.shop.merchantId} on DB_SHARD_1 (${shardFile.split("/").pop()})`);
  }
  // The flooded merchant (A) is the one not on DB; the other (B, `healthy`) only drives its payments, as A does too.
  const flooded = floodCount > 0 ? shops.find((s) => s !== healthy) : null;
  if (flooded) await throttleFlooded(stack, flooded, healthy);
  say(
    `${count} payments (seed ${seed}, reading ${values.reading}) for ${shops.map((s) => s.shop.merchantId).join(" and ")}: 30% duplicate deliveries, up to 2 s reordering, 5% dropped, 2% forged, ` +
      `10% API 5xx, 5% API 429, ${Number(CONSUMER_FAILURE_RATE) * 100}% of consumer batches crash; ` +
      `streamed to a * endpoint (${FIRST_ATTEMPT_FAILURES * 100}% of first attempts answered 503) and a filtered one`,
  );

  // 1. The storm (and the outage, from its start).
  let healedAt = null;
  const cronAnswers = [];
  const cronTimer =
    outageMs > 0 || neverSent > 0 || shardDownMs > 0 || floodCount > 0
      ? setInterval(
          () =>
            triggerCron(stack)
              .then(() => cronAnswers.push(200))
              .catch((error) => cronAnswers.push(String(error.message).slice(0, 120))),
          30_000,
        )
      : null;
  if (outageMs > 0) {
    for (const { shop } of shops) {
      await shop.settings({ chaos: { api_5xx_rate: 1 } });
      await stack.sandbox(`/_sandbox/sink/${shop.merchantId}`, { method: "PUT", body: { status: 503 } });
    }
    say(
      `outage: the API answers 503 to everything for ${values.outage} s, the fulfilment sink for the first half (retry scale ${RETRY_SCHEDULE_SCALE})`,
    );
    setTimeout(() => {
      for (const { shop } of shops) {
        stack.sandbox(`/_sandbox/sink/${shop.merchantId}`, { method: "PUT", body: { status: 200 } }).catch(() => undefined);
      }
    }, outageMs / 2);
    setTimeout(() => {
      Promise.all(shops.map(({ shop }) => shop.settings({ chaos: { api_5xx_rate: CHAOS.api_5xx_rate } }))).then(() => {
        healedAt = Date.now();
        say("outage over: the API answers again");
      });
    }, outageMs);
  }
  // The shard fault, a third of the way into the storm (by the pace asked for), for --shard-down seconds.
  const fault = { startedAt: null, healedAt: null, tables: [] };
  const faultDone =
    shardDownMs > 0
      ? (async () => {
          await sleep((count / Number(values.rate)) * FAULT_AFTER_SHARE * 1000);
          fault.tables = await breakShard(shardFile);
          fault.startedAt = Date.now();
          say(`shard fault: DB_SHARD_1's ${fault.tables.length} tables renamed away for ${values["shard-down"]} s`);
          await sleep(shardDownMs);
          await healShard(shardFile, fault.tables);
          fault.healedAt = Date.now();
          healedAt = fault.healedAt;
          say("shard fault over: DB_SHARD_1's tables are back");
        })()
      : null;
  // A failed rename ends the run (nothing would be measured); the promise is awaited before the drain.
  faultDone?.catch((error) => shutDown(1, `shard fault injection failed: ${error.stack ?? error.message}`));
  // The flood, a third of the way into the storm as the shard fault; its costs are sampled from the storm's start.
  const flood = flooded ? { stormStartedAt: Date.now(), startedAt: null, endedAt: null, settledAt: null, answers: [] } : null;
  const sampler = flooded ? startFloodSampler({ persistDir: stack.persistArgs[1], shop: flooded.shop, maxMs: PROBE_MAX_MS }) : null;
  if (flooded) {
    runFlood(stack, flooded.shop, flood).then(
      () => {
        healedAt = flood.endedAt;
      },
      (error) => shutDown(1, `the flood failed: ${error.stack ?? error.message}`),
    );
  }
  const probe = shardDownMs > 0 || floodCount > 0 ? startAppliedProbe(healthy.status) : null;
  const runs = await Promise.all(
    shops.map((s, i) =>
      drivePayments(s.shop, {
        // Two merchants share the count and the pace, so the worker's load is the default run's.
        count: Math.ceil((count - i) / MERCHANTS),
        random: seededRandom(seed + i),
        perSecond: Number(values.rate) / MERCHANTS,
        pollMs: 100,
        onProgress: progressBar(MERCHANTS === 1 ? "payments" : `payments ${s.binding}`),
      }),
    ),
  );
  const run = { payments: runs.flatMap((r) => r.payments), failures: runs.flatMap((r) => r.failures) };
  for (const failure of run.failures.slice(0, 10)) say(`driver: ${failure}`);
  say(`${run.payments.length} payments created and driven through their lifecycles`);
  for (const s of shops) {
    const quiet = await waitForQuiet(s.shop, 180_000);
    say(
      quiet
        ? `${label(s)}emulator quiet: every delivery made`
        : `${label(s)}warning: the emulator still has deliveries pending after 180 s`,
    );
  }
  for (const s of shops) s.truth = await s.shop.truth();
  const truthTransactions = shops.flatMap((s) => s.truth.transactions);
  const phases = [];
  /** Every merchant's records against its truth, the differing ones together. */
  const compareShops = async () => {
    const wrong = [];
    const rows = [];
    for (const s of shops) {
      const comparison = compareAll(s.truth.transactions, await listServiceTransactions(s.status));
      s.wrong = comparison.wrong;
      wrong.push(...comparison.wrong);
      rows.push(...comparison.rows.map((row) => ({ ...row, status: `${label(s)}${row.status}` })));
    }
    return { wrong, rows };
  };
  let convergedAt = null;
  const matching = async (text) => {
    const { wrong } = await compareShops();
    if (wrong.length === 0 && convergedAt === null) convergedAt = Date.now();
    const missing = wrong.filter((w) => w.diff[0] === "missing").length;
    phases.push({
      phase: text,
      matching: truthTransactions.length - wrong.length,
      behind: wrong.length - missing,
      missing,
      at: elapsed(),
    });
    return wrong.length;
  };

  // 2. Let the queues drain: until the service has not changed for 10 s (messages in backoff may still be waiting).
  for (const deadline = Date.now() + HEAL_WAIT_MS; (outageMs > 0 || shardDownMs > 0 || floodCount > 0) && healedAt === null; ) {
    if (Date.now() > deadline) throw new Error("the fault never healed");
    await sleep(1000);
  }
  const drainStart = Date.now();
  let lastChange = Date.now();
  let previous = -1;
  while (Date.now() - lastChange < 10_000 && Date.now() - drainStart < DRAIN_MS) {
    const { wrong } = await compareShops();
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
  const appliedSeen = probe ? await probe.stop() : null;
  if (flood) {
    await waitFloodSettled(flood, sampler.samples);
    await sampler.stop();
  }
  await matching(
    floodCount > 0
      ? "after the webhooks and the flood"
      : outageMs > 0 || shardDownMs > 0
        ? "after the webhooks and the heal"
        : "after the webhooks",
  );
  if (healedAt !== null) {
    say(
      convergedAt
        ? `converged ${((convergedAt - healedAt) / 1000).toFixed(0)} s after the ${flood ? "flood" : "heal"}`
        : "not converged within the drain phase",
    );
  }
  say(`after the webhooks: ${phases[0].matching}/${truthTransactions.length} match`);

  // 3. Reconciliation as the Cron Trigger runs it (500 records a run), once records are older than RECONCILE_AFTER_MINUTES.
  await sleep(Math.max(0, lastChange + RECONCILE_AFTER_MS + 1000 - Date.now()));
  const reconciliation = { runs: 0, found: 0, refreshed: 0, fixed: 0 };
  const seenRuns = new Set((await stack.admin("/admin/reconciliation/runs")).runs.map((run) => run.id));
  for (const deadline = Date.now() + RECONCILE_MS; Date.now() < deadline; ) {
    await triggerCron(stack);
    // One run per shard per cron run: the pass is over when every shard's run found fewer than a run takes.
    const shardRuns = await reconciliationDone(stack, deadline, seenRuns, D1_SHARDS.length);
    let more = false;
    for (const runRow of shardRuns) {
      reconciliation.runs++;
      reconciliation.found += runRow.found;
      reconciliation.refreshed += runRow.refreshed;
      reconciliation.fixed += runRow.fixed;
      if (runRow.found >= RECONCILE_PER_RUN) more = true;
    }
    if (!more) break;
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
    const notes = [];
    for (const s of shops) notes.push((await syncBatch(s.status, runStart)).note);
    await sleep(2000);
    const note = notes.join("; ");
    await matching(note);
    say(note);
  }

  // 5. Fulfilments: wait until each sink has what it should, then the final verdict.
  for (const s of shops) {
    const captured = new Set(s.truth.events.filter((e) => e.name === "transaction.captured").map((e) => e.transaction_id));
    s.captured = captured;
    s.fulfilment = fulfilmentFigures(await s.shop.sink(), captured);
  }
  for (const deadline = Date.now() + FULFILMENT_MS; shops.some((s) => !s.fulfilment.exact) && Date.now() < deadline; ) {
    await sleep(2000);
    for (const s of shops) s.fulfilment = fulfilmentFigures(await s.shop.sink(), s.captured);
  }

  const { rows, wrong } = await compareShops();
  const crashes = (readFileSync(stack.wranglerLog, "utf8").match(/chaos: injected consumer failure/g) ?? []).length;
  for (const s of shops) {
    s.deliveries = await s.shop.deliveries();
    const forgedIds = new Set(s.deliveries.filter((d) => d.forged).map((d) => d.event_id));
    const eventsOf = new Map(s.truth.transactions.map((t) => [t.id, new Set()]));
    for (const event of s.truth.events) eventsOf.get(event.transaction_id)?.add(event.id);
    s.forgedIds = forgedIds;
    s.forgedListed = 0;
    s.foreignListed = 0;
    await mapConcurrent(s.truth.transactions, 16, async (tx) => {
      const events = await s.status(`/v1/transactions/${tx.id}/events`);
      for (const event of events.status === 200 ? events.body.events : []) {
        if (forgedIds.has(event.id)) s.forgedListed++;
        else if (!eventsOf.get(tx.id)?.has(event.id)) s.foreignListed++;
      }
    });
    s.inbox = await forgedInInbox(stack, s.shop.merchantId, forgedIds);
    s.deadLetters = (await stack.admin(`/admin/dead-letters?merchant=${s.shop.merchantId}`)).dead_letters.length;
    s.counters = (await s.shop.counters()).counters;
    [s.walk] = await queryLocalD1(
      stack,
      `SELECT events_walked, api_calls FROM event_log_cursors WHERE merchant_id = '${s.shop.merchantId}'`,
    );
  }
  // The streams, once everything else has settled: every message delivered, checked, then a slice replayed.
  for (const s of shops) {
    s.streams = await streamsAfterRun({
      stack,
      status: s.status,
      shop: s.shop,
      endpoints: s.endpoints,
      truth: s.truth,
      deliveries: s.deliveries,
      label: label(s),
    });
  }

  // 6. The figures (the merchants' counters summed).
  const sum = (pick) => shops.reduce((total, s) => total + (pick(s) ?? 0), 0);
  const d = Object.fromEntries(
    ["duplicated", "dropped", "forged", "retries", "attempts"].map((k) => [k, sum((s) => s.counters.deliveries[k])]),
  );
  const api = Object.fromEntries(
    ["injected_5xx", "injected_429", "rate_limited", "requests"].map((k) => [k, sum((s) => s.counters.api.sandbox[k])]),
  );
  const walk = { events_walked: sum((s) => s.walk?.events_walked), api_calls: sum((s) => s.walk?.api_calls) };
  const truthEvents = sum((s) => s.truth.events.length);
  const scenarios = new Set(run.payments.map((p) => p.scenario.name)).size;
  console.log(`
chaos run: ${count} payments over ${scenarios} lifecycles, ${truthEvents} Smart Router events, seed ${seed}, reading ${values.reading}${outageMs > 0 ? `, ${values.outage} s API outage` : ""}${neverSent > 0 ? `, ${neverSent * 100}% never sent` : ""}${shardDownMs > 0 ? `, DB_SHARD_1 down ${values["shard-down"]} s` : ""}
faults:    ${d.duplicated} duplicate deliveries · ${d.dropped} dropped · ${d.forged} forged · ${d.retries} webhook retries
           ${api.injected_5xx} API 5xx · ${api.injected_429} API 429 (injected) + ${api.rate_limited} real 429 · ${crashes} consumer batches crashed (log)
work:      ${d.attempts} deliveries made, ${api.requests} Smart Router API calls by the worker
backstop:  ${walk.events_walked} events walked in the event log with ${walk.api_calls} API calls (${walk.events_walked ? (walk.api_calls / walk.events_walked).toFixed(3) : "n/a"} per event)

${table(
  [
    { key: "phase", title: "phase", left: true },
    { key: "matching", title: `matching / ${truthTransactions.length}` },
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

  for (const s of shops) printStreams(s.streams.figures);

  // The shard fault's figures: answers per shard during it, the healthy merchant's lag, the time to converge after it.
  let answered500 = 0;
  if (shardDownMs > 0) {
    const answerRows = shops.map((s) => ({
      shard: s.binding,
      merchant: s.shop.merchantId,
      ...answersBetween(s.deliveries, fault.startedAt, fault.healedAt),
    }));
    const wholeRun = shops.map((s) => answersBetween(s.deliveries, 0, Number.POSITIVE_INFINITY));
    answered500 = wholeRun.reduce((total, a) => total + a["500"], 0);
    const lag = appliedLag(healthy.truth, healthy.deliveries, appliedSeen, fault);
    const after = convergedAt === null ? "never (within the run)" : `${((convergedAt - fault.healedAt) / 1000).toFixed(1)} s`;
    const cronFailed = cronAnswers.filter((a) => a !== 200);
    console.log(`shard fault: DB_SHARD_1 down ${((fault.healedAt - fault.startedAt) / 1000).toFixed(1)} s (${fault.tables.length} tables renamed), from ${elapsedAt(fault.startedAt)} to ${elapsedAt(fault.healedAt)}

webhook deliveries answered during the fault (emulator's delivery log, every attempt, forged and duplicates included):
${table(
  [
    { key: "shard", title: "shard", left: true },
    { key: "merchant", title: "merchant", left: true },
    { key: "total", title: "answered" },
    { key: "2xx", title: "200" },
    { key: "429", title: "429" },
    { key: "503", title: "503" },
    { key: "500", title: "500" },
    { key: "5xx", title: "other 5xx" },
    { key: "4xx", title: "other 4xx" },
    { key: "none", title: "no answer" },
  ],
  answerRows,
)}
500s answered in the whole run: ${answered500}${shops
      .map((s) => {
        // When the 500s came, per merchant: to find them in the wrangler log.
        const at = s.deliveries.filter((x) => x.status === 500).map((x) => x.at);
        return at.length > 0 ? ` · ${s.binding}: ${at.length} from ${at[0]} to ${at.at(-1)}` : "";
      })
      .join("")}

${healthy.binding} merchant ${healthy.shop.merchantId}: last webhook delivered → status API shows the final state (per payment, the record's updated_at as first listed):
${lagTable(lag)}
  (not sampled: ${lag.undelivered} whose last event was never delivered (dropped), ${lag.early} shown before their last delivery, ${lag.unseen} never shown (${lag.listedOtherwise} of them listed in another state))
after the heal: every transaction of both merchants equal to the truth ${after}${convergedAt !== null && convergedAt > drainStart + DRAIN_MS ? " (after the drain phase: reconciliation or the sync batch)" : ""}
cron triggers during the run: ${cronAnswers.length} (${cronFailed.length} failed${cronFailed.length > 0 ? `: ${cronFailed[0]}` : ""})
`);
  }

  const floodChecks = flood
    ? floodReport({ flood, sampler, flooded, healthy, appliedSeen, convergedAt, persistDir: stack.persistArgs[1] })
    : [];
  const checks = [];
  for (const s of shops) {
    const sw = s.wrong ?? [];
    const f = s.fulfilment;
    checks.push(
      {
        check: `${label(s)}transactions equal to the truth (status, every amount)`,
        expected: s.truth.transactions.length,
        found: s.truth.transactions.length - sw.length,
      },
      { check: "  lost (missing in the service)", expected: 0, found: sw.filter((w) => w.diff[0] === "missing").length },
      { check: "  wrong status or amount", expected: 0, found: sw.filter((w) => w.diff[0] !== "missing").length },
      { check: "fulfilments (distinct webhook-id) = captured payments", expected: s.captured.size, found: f.fulfilled },
      { check: "  captured payments never fulfilled", expected: 0, found: f.missing },
      { check: "  payments fulfilled twice", expected: 0, found: f.twice },
      { check: "  fulfilled without a capture", expected: 0, found: f.uncaptured },
      { check: "forged events listed on a transaction", expected: 0, found: s.forgedListed },
      { check: "forged events applied (D1 event inbox)", expected: 0, found: s.inbox.applied },
      { check: "events listed on a transaction they are not of", expected: 0, found: s.foreignListed },
      { check: "dead letters", expected: 0, found: s.deadLetters },
      ...s.streams.checks,
    );
  }
  checks.push({ check: "payment driver errors", expected: 0, found: run.failures.length });
  if (shardDownMs > 0) checks.push({ check: "webhook deliveries answered 500 (whole run)", expected: 0, found: answered500 });
  // A check with its own `ok` compares a bound ("≤ 0.1"), not an exact count.
  checks.push(...floodChecks);
  const passed = (c) => c.ok ?? c.expected === c.found;
  console.log(
    table(
      [
        { key: "check", title: "check", left: true },
        { key: "expected", title: "expected" },
        { key: "found", title: "found" },
        { key: "ok", title: "", left: true },
      ],
      checks.map((c) => ({ ...c, ok: passed(c) ? "✓" : "✗" })),
    ),
  );
  for (const { truth: t, record, diff } of wrong.slice(0, 10)) {
    const detail = diff[0] === "missing" ? "missing" : diff.map((f) => `${f}: truth ${t[f]} / service ${record[f]}`).join(", ");
    console.log(`  ✗ ${t.id} (${t.name}): ${detail}`);
  }
  for (const s of shops) {
    console.log(
      `\n${label(s)}forged: ${s.forgedIds.size} forged event ids delivered: ${s.inbox.rejected} rejected by fetch-back (404), ${s.inbox.pending} still retrying their fetch-back, ${s.inbox.applied} applied` +
        `\n${label(s)}fulfilment notifications: ${s.fulfilment.posts} POSTs received (retries of one webhook-id included)`,
    );
  }
  const differing = checks.filter((c) => !passed(c));
  const failed = differing.length;
  const duration = Math.round((Date.now() - started) / 1000);
  console.log(
    `\n${failed === 0 ? "✓ nothing lost, nothing applied twice, nothing forged applied, every stream in order" : `✗ FAIL: ${failed} checks differ: ${differing.map((c) => c.check.trim()).join("; ")}`}` +
      ` · duration ${Math.floor(duration / 60)}m${String(duration % 60).padStart(2, "0")}s` +
      `${duration < 600 ? "" : " (over the 10-minute target)"}`,
  );
  await shutDown(failed === 0 ? 0 : 1);
} catch (error) {
  await shutDown(1, `npm run chaos failed: ${error.stack ?? error.message}`);
}

/** The flooded merchant's backlog limit as backlog.ts computes it for a `test-` project: 10 minutes of sandbox_rpm, at least 1,000. */
// A function declaration, hoisted: the run (top-level await above) calls it before this line of the module has run.
function floodBacklogLimit() {
  return Math.max(1000, FLOOD_SANDBOX_RPM * 10);
}

/** Gives the flooded merchant the issue's quota (300 rpm) in the service, where its backlog limit follows, and at its project. */
async function throttleFlooded(stack, flooded, other) {
  const { merchantId, projectId } = flooded.shop;
  // backlog.ts sizes a `test-` project's backlog by its sandbox_rpm: on any other project this run would not test 3,000.
  if (!projectId.startsWith("test-")) throw new Error(`${projectId} is not a test- sandbox project: sandbox_rpm does not size its backlog`);
  await stack.admin(`/admin/merchants/${merchantId}`, { method: "PATCH", body: { rate_limits: { sandbox_rpm: FLOOD_SANDBOX_RPM } } });
  // The service is told the truth: the project's own quota is 300 rpm too.
  await flooded.shop.settings({ rates: { sandbox: FLOOD_SANDBOX_RPM } });
  const { merchant } = await stack.admin(`/admin/merchants/${merchantId}`);
  if (merchant.rate_limits?.sandbox_rpm !== FLOOD_SANDBOX_RPM) {
    throw new Error(`the PATCH left ${merchantId} with rate_limits ${JSON.stringify(merchant.rate_limits)}`);
  }
  say(
    `flooded merchant A: ${merchantId} (${flooded.binding}, ${projectId}, sandbox_rpm ${FLOOD_SANDBOX_RPM}: backlog limit ${floodBacklogLimit()}); ` +
      `merchant B: ${other.shop.merchantId} (${other.binding})`,
  );
}

/** A third of the way into the storm, the forged deliveries; `flood` gets their answers and the flood's start and end. */
async function runFlood(stack, shop, flood) {
  await sleep((count / Number(values.rate)) * FAULT_AFTER_SHARE * 1000);
  flood.startedAt = Date.now();
  say(`flood: ${floodCount} forged deliveries to A with its webhook credential, over ${FLOOD_SECONDS} s, ${FLOOD_CONCURRENCY} at a time`);
  flood.answers = await sendFlood({
    workerUrl: stack.workerUrl,
    webhook: shop.creds.webhook,
    count: floodCount,
    seconds: FLOOD_SECONDS,
    concurrency: FLOOD_CONCURRENCY,
  });
  flood.endedAt = Date.now();
  const answers = countAnswers(flood.answers);
  say(
    `flood over (${((flood.endedAt - flood.startedAt) / 1000).toFixed(0)} s): ${answers.admitted} answered 200, ${answers.refused} 429` +
      `${answers.other.length > 0 ? `, ${answers.other.join(", ")}` : ""}`,
  );
}

/**
 * Waits until a sample taken after the flood shows every admitted forged id settled in A's inbox (any outcome but
 * `pending`), and sets `flood.settledAt` to that sample's time. Horizon: FLOOD_SETTLE_MS after the flood's end.
 */
async function waitFloodSettled(flood, samples) {
  const admitted = countAnswers(flood.answers).admitted;
  const settled = (sample) =>
    Object.entries(sample.inbox).reduce((sum, [outcome, n]) => sum + (outcome === "pending" ? 0 : n), 0) >= admitted;
  for (const deadline = flood.endedAt + FLOOD_SETTLE_MS; ; ) {
    flood.settledAt = samples.find((sample) => sample.at >= flood.endedAt && settled(sample))?.at ?? null;
    if (flood.settledAt !== null || Date.now() > deadline) break;
    await sleep(1000);
  }
  say(
    flood.settledAt !== null
      ? `flood: every admitted forged id settled ${((flood.settledAt - flood.endedAt) / 1000).toFixed(0)} s after the flood's end`
      : `flood: admitted forged ids still pending ${FLOOD_SETTLE_MS / 60_000} min after the flood's end`,
  );
}

/** The flood's figures, printed; answers the checks they decide. */
function floodReport({ flood, sampler, flooded, healthy, appliedSeen, convergedAt, persistDir }) {
  const answers = countAnswers(flood.answers);
  const calls = floodCalls(sampler.samples, flood, flood.stormStartedAt);
  const byId = forgedFetchCalls(persistDir, flooded.shop.merchantId);
  const parking = parkingFigures(sampler.samples, flood.startedAt, sampler.samples.at(-1)?.at ?? flood.endedAt);
  const lag = appliedLag(
    healthy.truth,
    healthy.deliveries,
    appliedSeen,
    { startedAt: flood.startedAt, healedAt: flood.endedAt },
    "the flood",
  );
  const waits = verifyWaits(persistDir, healthy.shop.merchantId, healthy.deliveries, flood);
  const inbox = sampler.samples.at(-1)?.inbox ?? {};
  // Checked: the larger of the estimate (calls minus A's own rate) and the exact by-id calls, a floor the estimate may
  // fall under when A's own traffic stops early in the window (its rate before the flood then overstates it).
  const perAdmitted = answers.admitted > 0 ? Math.max(calls.net, byId.calls) / answers.admitted : 0;
  const converged = convergedAt === null ? null : convergedAt - flood.endedAt;
  printFlood({ flood, sampler, flooded, healthy, answers, calls, byId, perAdmitted, parking, lag, waits, inbox, converged });
  const bound = (limit, found, digits = 3) => ({ expected: `≤ ${limit}`, found: found.toFixed(digits), ok: found <= limit });
  return [
    { check: "flood: forged deliveries answered 200 or 429", expected: answers.sent, found: answers.admitted + answers.refused },
    { check: "  429 answers without Retry-After", expected: 0, found: answers.withoutRetryAfter },
    { check: "  admitted forged ids rejected (A's inbox)", expected: answers.admitted, found: inbox.rejected ?? 0 },
    { check: "  forged ids applied", expected: 0, found: (inbox.applied ?? 0) + (inbox.stale ?? 0) + (inbox.ignored ?? 0) },
    { check: "  A's Smart Router calls per admitted forged delivery", ...bound(FLOOD_CALLS_PER_FORGED, perAdmitted) },
    { check: "  wake-up messages per waiting message a minute", ...bound(QUEUE_OPS_PER_WAITING_MINUTE, parking.perWaitingMinute) },
    {
      check: `  B's payments delivered during the flood, shown after > ${SLOWED_MS / 1000} s`,
      expected: 0,
      found: lag.windows.during.filter((ms) => ms > SLOWED_MS).length,
    },
    {
      check: "  s from the flood's end until both merchants equal the truth",
      expected: `≤ ${FLOOD_SETTLE_MS / 1000}`,
      found: converged === null ? "never" : (converged / 1000).toFixed(0),
      ok: converged !== null && converged <= FLOOD_SETTLE_MS,
    },
  ];
}

/** Prints the flood's figures (floodReport computes them). */
function printFlood({ flood, sampler, flooded, healthy, answers, calls, byId, perAdmitted, parking, lag, waits, inbox, converged }) {
  const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
  const per = (n, of) => (of > 0 ? (n / of).toFixed(3) : "n/a");
  const name = (id) => (id === flooded.shop.merchantId ? "A" : id === healthy.shop.merchantId ? "B" : id);
  const parkedBy = Object.entries(parking.maxByMerchant).map(([id, n]) => `${name(id)} ${n}`);
  const parked =
    parking.maxParked === 0
      ? "nothing was parked (no delivery waited for A's or B's Smart Router budget): 0 wake-up messages"
      : `at most ${parking.maxParked} deliveries parked at once (most per merchant: ${parkedBy.join(", ")}); ${parking.messageMinutes.toFixed(1)} parked message-minutes; ` +
        `${parking.wakeups} wake-ups booked → ${parking.perWaitingMinute.toFixed(3)} wake-up messages per waiting message a minute`;
  console.log(`flood: ${answers.sent} forged deliveries (${flood.answers[0]?.id.slice(0, 8) ?? "ev_flood"}…, A's webhook credential) to A ${flooded.shop.merchantId} (${flooded.binding}, sandbox_rpm ${FLOOD_SANDBOX_RPM}, backlog limit ${floodBacklogLimit()}), from ${elapsedAt(flood.startedAt)} to ${elapsedAt(flood.endedAt)} (${secs(flood.endedAt - flood.startedAt)}; asked: ${FLOOD_SECONDS} s, ${FLOOD_CONCURRENCY} at a time); B ${healthy.shop.merchantId} (${healthy.binding}) ran its payments beside it
answers:   ${answers.admitted} × 200 (admitted), ${answers.refused} × 429 (${answers.withoutRetryAfter} without Retry-After; Retry-After: ${answers.retryAfter.join(", ") || "-"} s${answers.firstRefusedAt ? `; the first at ${elapsedAt(answers.firstRefusedAt)}` : ""}), other: ${answers.other.join(", ") || "none"}
A's inbox: forged ids by outcome ${JSON.stringify(inbox)}; every admitted one settled ${flood.settledAt === null ? `not within ${FLOOD_SETTLE_MS / 60_000} min` : `${secs(flood.settledAt - flood.endedAt)} after the flood's end`}
A's Smart Router calls (emulator's counter of its sandbox bucket) from the flood's start to the last forged id settled (${secs(calls.windowMs)}): ${calls.gross}
  minus A's own rate before the flood (${calls.baselineCalls} calls in the ${secs(calls.baselineMs)} before it${calls.baselineMs < calls.windowMs ? ", all the storm had run" : ""}) over that window: ${calls.baseline.toFixed(0)} → ${calls.net.toFixed(0)} calls attributed to the flood
  = ${per(calls.net, answers.admitted)} per admitted forged delivery, ${per(calls.net, answers.sent)} per forged delivery sent; without subtracting the baseline: ${per(calls.gross, answers.admitted)} per admitted
  the service's own record (fetch-backs, rows and folded): ${byId.calls} calls made by by-id fetches of forged ids (${byId.fetches} tried, ${byId.refused} refused by our pacer before any call)
  = ${per(byId.calls, answers.admitted)} per admitted, ${per(byId.calls, answers.sent)} per sent: exact for those fetches, a floor for the flood (its list pages are not in it)
  checked: the larger, ${perAdmitted.toFixed(3)} per admitted forged delivery (target ≤ ${FLOOD_CALLS_PER_FORGED})
parking (parked_deliveries and parked_wakeups of every shard, read every second from the flood's start, ${parking.samples} samples, ${sampler.failures.count} failed${sampler.failures.first ? `: ${sampler.failures.first}` : ""}):
  ${parked}
  (one wake-up message per merchant per ≥ 1 s while it has deliveries parked, not one per delivery; a booking is seen as a parked_wakeups row (merchant, due_at) for at least 1 s)

B ${healthy.shop.merchantId}: last webhook delivered → status API shows the final state (per payment):
${lagTable(lag)}
  (not sampled: ${lag.undelivered} whose last event was never delivered (dropped), ${lag.early} shown before their last delivery, ${lag.unseen} never shown (${lag.listedOtherwise} of them listed in another state))
  of which delivery answered → first fetch-back answered (queue wait + verification), per event: ${Object.entries(waits)
    .map(([window, ms]) => `${window} n ${ms.length} p50 ${percentile(ms, 50)} p99 ${percentile(ms, 99)}`)
    .join("; ")}
after the flood: every transaction of both merchants equal to the truth ${converged === null ? "never (within the run)" : `${secs(converged)} after its end`}
`);
}

/** One Cron Trigger run, as wrangler dev starts it. */
async function triggerCron(stack) {
  const trigger = await http(`${stack.workerUrl}/cdn-cgi/local/scheduled?cron=${encodeURIComponent("*/5 * * * *")}`);
  if (trigger.status !== 200) throw new Error(`scheduled trigger → ${trigger.status} ${JSON.stringify(trigger.body)}`);
}

/**
 * Waits for `shards` runs not in `seen` (a cron run starts one per shard) to refresh everything they found (or the
 * deadline); answers their rows and adds them to `seen`.
 */
async function reconciliationDone(stack, deadline, seen, shards) {
  for (;;) {
    const fresh = (await stack.admin("/admin/reconciliation/runs")).runs.filter((run) => !seen.has(run.id)).slice(0, shards);
    const finished = fresh.every((run) => run.refreshed >= run.found);
    if (fresh.length >= shards && (finished || Date.now() > deadline)) {
      for (const run of fresh) seen.add(run.id);
      return fresh;
    }
    if (Date.now() > deadline + 10_000) {
      // Some shard's run never showed up: count what did, so one missing run does not end the whole proof.
      if (fresh.length > 0) {
        for (const run of fresh) seen.add(run.id);
        return fresh;
      }
      throw new Error("the Cron Trigger started no reconciliation run");
    }
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

/** `at` (epoch ms) as the run's elapsed time, like the log lines. */
function elapsedAt(at) {
  return `${((at - started) / 1000).toFixed(0)} s`;
}

/** The emulator's delivery attempts answered in [from, to) (epoch ms), by the answer's status class. */
function answersBetween(deliveries, from, to) {
  const counts = { total: 0, "2xx": 0, 429: 0, 503: 0, 500: 0, "5xx": 0, "4xx": 0, none: 0 };
  for (const delivery of deliveries) {
    // A dropped delivery was never sent: nothing answered it.
    if (delivery.outcome === "dropped" || delivery.status === null) continue;
    const at = Date.parse(delivery.at);
    if (at < from || at >= to) continue;
    const code = delivery.status;
    counts.total++;
    if (code >= 200 && code < 300) counts["2xx"]++;
    else if (code === 429 || code === 503 || code === 500) counts[code]++;
    else if (code > 500) counts["5xx"]++;
    else if (code === 0) counts.none++;
    else counts["4xx"]++;
  }
  return counts;
}

/** The compared fields of a record (or of the truth) as one string: "the same state". */
// A function declaration, hoisted: the probe starts before this line of the module has run (top-level await above).
function stateOf(tx) {
  return ["status", "currency", "amount", "authorized_amount", "captured_amount", "refunded_amount", "available_amount"]
    .map((field) => String(tx[field]))
    .join("|");
}

/**
 * Lists the merchant's records changed lately, every PROBE_EVERY_MS, and keeps for each transaction and state the
 * record's `updated_at` when that state was first listed: when the status API started showing it. `stop()` ends the
 * loop and answers that map (transaction id → state → epoch ms).
 */
function startAppliedProbe(status) {
  const seen = new Map();
  let newest = 0;
  let stopped = false;
  const polls = { ok: 0, failed: 0, firstError: "" };
  const deadline = Date.now() + PROBE_MAX_MS;
  const pollOnce = async () => {
    // A 3 s overlap: records written in the same instant as the newest one seen (or by a slower isolate) are not missed.
    const after = newest > 0 ? `&updated_after=${encodeURIComponent(new Date(newest - 3000).toISOString())}` : "";
    let cursor = null;
    for (let page = 0; page < 20; page++) {
      const answer = await status(`/v1/transactions?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : after}`);
      if (answer.status !== 200) throw new Error(`GET /v1/transactions → ${answer.status}`);
      for (const tx of answer.body.transactions) {
        const at = Date.parse(tx.updated_at);
        const states = seen.get(tx.id) ?? new Map();
        if (!states.has(stateOf(tx))) states.set(stateOf(tx), at);
        seen.set(tx.id, states);
        newest = Math.max(newest, at);
      }
      cursor = answer.body.next_cursor;
      if (!cursor) return;
    }
  };
  const loop = (async () => {
    while (!stopped && Date.now() < deadline) {
      // A failed poll (the worker busy) is only a missed sample: the next one lists the same records again.
      await pollOnce().then(
        () => polls.ok++,
        (error) => {
          polls.failed++;
          polls.firstError ||= String(error);
        },
      );
      await sleep(PROBE_EVERY_MS);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      // Said, so a probe that saw nothing (every poll failing) is told apart from a service that showed nothing.
      say(`applied probe: ${polls.ok} polls answered, ${polls.failed} failed, ${seen.size} transactions seen`);
      if (polls.firstError) say(`applied probe: first failure: ${polls.firstError}`);
      return seen;
    },
  };
}

/** Nearest-rank percentile of sorted numbers, in seconds with one decimal ("-" for none). */
function percentile(sorted, p) {
  if (sorted.length === 0) return "-";
  const value = sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  return `${(value / 1000).toFixed(2)} s`;
}

/** The delivery → applied lag per window (appliedLag's rows), as a table. */
function lagTable(lag) {
  return table(
    [
      { key: "window", title: "last delivery", left: true },
      { key: "n", title: "payments" },
      { key: "p50", title: "p50" },
      { key: "p99", title: "p99" },
      { key: "max", title: "max" },
    ],
    lag.rows,
  );
}

/**
 * Per payment of the merchant: the time from its last event's first delivery answered 2xx to the moment the status API
 * showed its final state (the record's updated_at for that state), grouped by when that delivery was answered: before
 * the fault (`what`: the shard fault, or the flood), during it, after it.
 */
function appliedLag(truth, deliveries, seen, fault, what = "the fault") {
  const delivered = new Map();
  for (const d of deliveries) {
    if (d.forged || !(d.status >= 200 && d.status < 300)) continue;
    const at = Date.parse(d.at);
    if (!delivered.has(d.event_id) || at < delivered.get(d.event_id)) delivered.set(d.event_id, at);
  }
  // truth.events is in firing order: the last one seen of a transaction is its last event.
  const lastEvent = new Map();
  for (const event of truth.events) lastEvent.set(event.transaction_id, event.id);
  const windows = { before: [], during: [], after: [] };
  // Unseen in the final state, though the transaction itself was listed: the probe missed that state (e.g. overwritten).
  let listedOtherwise = 0;
  let undelivered = 0;
  let early = 0;
  let unseen = 0;
  for (const tx of truth.transactions) {
    const sent = delivered.get(lastEvent.get(tx.id));
    if (sent === undefined) {
      undelivered++;
      continue;
    }
    const shown = seen?.get(tx.id)?.get(stateOf(tx));
    if (shown === undefined) {
      unseen++;
      if (seen?.has(tx.id)) listedOtherwise++;
    } else if (shown < sent) early++;
    else windows[sent < fault.startedAt ? "before" : sent < fault.healedAt ? "during" : "after"].push(shown - sent);
  }
  const rows = Object.entries(windows).map(([window, lags]) => {
    const sorted = lags.sort((a, b) => a - b);
    return {
      window: `${window} ${what}`,
      n: sorted.length,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: percentile(sorted, 100),
    };
  });
  return { rows, windows, undelivered, early, unseen, listedOtherwise };
}
