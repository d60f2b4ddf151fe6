// `npm run bench`: every figure of the README's benchmark table, measured in one run on this machine.
// Prints one table and writes it, with the raw measurements, to bench/results/latest.json (BENCH_OUT overrides).
//   BENCH_QUICK=1        shorter runs (for trying the harness; figures are noisier)
//   BENCH_CONCURRENCY=n  ingest connections (default 16)
//   BENCH_QUIET_WAIT=s   before each section, wait up to s seconds for other processes to leave the CPU (< 20% busy)
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { benchConsumer } from "./consumer.mjs";
import { benchCost, costRows } from "./cost.mjs";
import { benchFetchBack } from "./fetch-back.mjs";
import { benchIngest } from "./ingest.mjs";
import { backgroundBusy } from "./lib/cpu.mjs";
import { describeMachine } from "./lib/machine.mjs";
import { round } from "./lib/stats.mjs";
import { buildWorker, ROOT, startWorker } from "./lib/worker.mjs";
import { benchLimiter, benchLimiterDurableObject } from "./limiter.mjs";
import { benchOutbox, outboxRows } from "./outbox.mjs";
import { benchStatusApi } from "./status-api.mjs";
import { benchStorage, storageRows } from "./storage.mjs";

const quick = process.env.BENCH_QUICK === "1";
const settings = {
  ingest: {
    concurrency: Number(process.env.BENCH_CONCURRENCY ?? 16),
    warmupMs: quick ? 1000 : 1500,
    durationMs: quick ? 4000 : 10000,
    rounds: 2,
    maxRequests: 400_000,
    breakdownMs: quick ? 2000 : 3000,
  },
  consumer: { oneByOneEvents: quick ? 90 : 300, batchedEvents: quick ? 600 : 3000, batchSize: 100 },
  status: {
    transactions: 10_000,
    getRequests: quick ? 300 : 1000,
    listRequests: quick ? 100 : 300,
    walkRequests: quick ? 100 : 300,
    keys: 12,
  },
  storage: { payments: quick ? 2000 : 10_000, seed: 14, retentionDays: 30 },
  outbox: { payments: quick ? 300 : 1000, seed: 22 },
  cost: { payments: quick ? 500 : 2000, seed: 14, retentionDays: 30 },
};
const outFile = path.resolve(ROOT, process.env.BENCH_OUT ?? "bench/results/latest.json");

const log = (message) => process.stderr.write(`bench: ${message}\n`);
const quietWaitMs = Number(process.env.BENCH_QUIET_WAIT ?? 0) * 1000;

/** Background CPU before a section; with BENCH_QUIET_WAIT, first waits (bounded) for the machine to be quiet. */
async function beforeSection() {
  const deadline = Date.now() + quietWaitMs;
  let busy = await backgroundBusy();
  while (busy !== null && busy > 0.2 && Date.now() < deadline) {
    log(`other processes keep the CPU ${Math.round(busy * 100)}% busy; waiting`);
    await new Promise((resolve) => setTimeout(resolve, 4000));
    busy = await backgroundBusy();
  }
  return busy;
}
const started = performance.now();
const machine = describeMachine();
const background = {};

log("building the worker (wrangler deploy --dry-run)");
const build = buildWorker();
const results = { build: { upload: build.upload, ms: round(build.buildMs, 0) } };
try {
  background.ingest = await beforeSection();
  log(
    `ingest: worker vs framework-free Worker vs Node ceiling, ${settings.ingest.concurrency} connections, ${settings.ingest.durationMs / 1000} s each in ${settings.ingest.rounds} alternating rounds`,
  );
  results.ingest = await benchIngest(build, settings.ingest);

  background.consumer = await beforeSection();
  log(`consumer: ${settings.consumer.oneByOneEvents} events one by one, ${settings.consumer.batchedEvents} in batches of 100`);
  results.consumer = await benchConsumer(build, settings.consumer);

  background.limiter = await beforeSection();
  log("limiter: pacer vs emulator GCRA over a simulated minute, then the Durable Object in real time");
  results.limiter = benchLimiter();
  const limiterWorker = await startWorker(build);
  try {
    results.limiter.durableObject = await benchLimiterDurableObject(limiterWorker, { durationMs: quick ? 2000 : 5000 });
  } finally {
    await limiterWorker.dispose();
  }

  background.fetchBack = await beforeSection();
  log("fetch-back: a burst of 1,000 webhooks, naive vs coalesced");
  results.fetchBack = await benchFetchBack();

  background.status = await beforeSection();
  log(`status API: ${settings.status.transactions} transactions, get and list`);
  results.status = await benchStatusApi(build, settings.status);

  background.storage = await beforeSection();
  log(`storage: ${settings.storage.payments} payments of the demo mix through the consumer, D1 bytes per table, then retention`);
  results.storage = await benchStorage(build, settings.storage);

  background.outbox = await beforeSection();
  log(`outbox: ${settings.outbox.payments} payments each for a merchant with no endpoint and one with one, D1 rows written`);
  results.outbox = await benchOutbox(build, settings.outbox);
  background.cost = await beforeSection();
  log(`cost: ${settings.cost.payments} payments of the demo mix through the edge, the queues and the retention cron, metered and priced`);
  results.cost = await benchCost(build, settings.cost);
} finally {
  build.cleanup();
}

// ---- the table ----
const ms = (value) => (value === null || value === undefined ? "–" : `${value < 10 ? value.toFixed(1) : value.toFixed(0)} ms`);
const num = (value, digits = 0) => value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const verdict = (ok) => (ok ? "met" : "MISSED");
const { ingest, consumer, limiter, fetchBack, status } = results;
const rows = [
  [
    "Ingest",
    `worker in workerd (${ingest.concurrency} conns)`,
    `${num(ingest.worker.rps)} req/s · p50 ${ms(ingest.worker.p50)} · p99 ${ms(ingest.worker.p99)}`,
    "",
    "",
  ],
  [
    "Ingest",
    `Node + Hono ceiling (${ingest.concurrency} conns)`,
    `${num(ingest.ceiling.rps)} req/s · p50 ${ms(ingest.ceiling.p50)} · p99 ${ms(ingest.ceiling.p99)}`,
    "",
    "",
  ],
  [
    "Ingest",
    `framework-free Worker, same work, same workerd (${ingest.concurrency} conns)`,
    `${num(ingest.plain.rps)} req/s · p50 ${ms(ingest.plain.p50)} · p99 ${ms(ingest.plain.p99)} · ${num(ingest.plain.cpuUsPerRequest)} µs CPU`,
    "",
    "",
  ],
  ["Ingest", "edge / framework-free Worker, throughput", `${ingest.plainRatio.toFixed(2)}×`, "≥ 0.9×", verdict(ingest.plainRatio >= 0.9)],
  [
    "Ingest",
    "edge / framework-free Worker, CPU per delivery (theirs / ours)",
    `${ingest.plainCpuRatio.toFixed(2)}×`,
    "≥ 0.9×",
    verdict(ingest.plainCpuRatio >= 0.9),
  ],
  ["Ingest", "worker / Node ceiling (information)", `${ingest.ratio.toFixed(2)}×`, "", ""],
  [
    "Ingest",
    "CPU per answered request, worker (workerd + Miniflare in Node) vs ceiling",
    `${num(ingest.worker.cpuUsPerRequest)} µs (workerd ${num(ingest.worker.cpuSplitUs.workerd)}) vs ${num(ingest.ceiling.cpuUsPerRequest)} µs · ${ingest.cpuRatio.toFixed(2)}×`,
    "",
    "",
  ],
  [
    "Ingest",
    "  worker, GET /health (runtime + Hono, no binding)",
    `${num(ingest.workerBreakdown.health.answersPerSecond)} req/s · p50 ${ms(ingest.workerBreakdown.health.p50)} · ${num(ingest.workerBreakdown.health.cpuUsPerRequest)} µs CPU (workerd ${num(ingest.workerBreakdown.health.cpuSplitUs.workerd)})`,
    "",
    "",
  ],
  [
    "Ingest",
    "  worker, wrong password (cached credential, hash, 401; no enqueue)",
    `${num(ingest.workerBreakdown.wrongPassword.answersPerSecond)} req/s · p50 ${ms(ingest.workerBreakdown.wrongPassword.p50)} · ${num(ingest.workerBreakdown.wrongPassword.cpuUsPerRequest)} µs CPU (workerd ${num(ingest.workerBreakdown.wrongPassword.cpuSplitUs.workerd)})`,
    "",
    "",
  ],
  [
    "Ingest",
    "  worker, valid delivery, in-memory queue (the ceiling's enqueue)",
    `${num(ingest.workerBreakdown.memoryQueue.answersPerSecond)} req/s · p50 ${ms(ingest.workerBreakdown.memoryQueue.p50)} · ${num(ingest.workerBreakdown.memoryQueue.cpuUsPerRequest)} µs CPU (workerd ${num(ingest.workerBreakdown.memoryQueue.cpuSplitUs.workerd)}) · ${ingest.memoryQueueRatio.toFixed(2)}× the ceiling`,
    "",
    "",
  ],
  [
    "Consumer",
    "one-by-one (1 message per batch)",
    `${num(consumer.oneByOne.eventsPerSecond)} events/s · ${consumer.oneByOne.d1.statementsPerEvent.toFixed(2)} stmts/event · ${consumer.oneByOne.d1.roundTripsPerEvent.toFixed(2)} D1 calls/event`,
    "",
    "",
  ],
  [
    "Consumer",
    "batched (100 messages per batch)",
    `${num(consumer.batched.eventsPerSecond)} events/s · ${consumer.batched.d1.statementsPerEvent.toFixed(2)} stmts/event · ${consumer.batched.d1.roundTripsPerEvent.toFixed(2)} D1 calls/event`,
    "",
    "",
  ],
  [
    "Consumer",
    "SQL statements per event, one-by-one / batched",
    `${consumer.statementsRatio.toFixed(1)}× fewer`,
    "≥ 10×",
    verdict(consumer.statementsRatio >= 10),
  ],
  [
    "Consumer",
    "D1 calls (queries + batches) per event, ratio",
    `${consumer.roundTripsRatio.toFixed(0)}× fewer`,
    "≥ 10×",
    verdict(consumer.roundTripsRatio >= 10),
  ],
  ["Consumer", "throughput, batched / one-by-one", `${consumer.throughputRatio.toFixed(1)}×`, "", ""],
  [
    "Limiter",
    "overshoot (429s the server's GCRA answers), simulated minute",
    num(limiter.saturation.overshoot + limiter.interactiveUnderBatch.overshoot),
    "0",
    verdict(limiter.saturation.overshoot + limiter.interactiveUnderBatch.overshoot === 0),
  ],
  [
    "Limiter",
    "utilisation, all callers greedy (accepted / rpm + burst)",
    `${(limiter.saturation.utilisation * 100).toFixed(1)}%`,
    "≥ 90%",
    verdict(limiter.saturation.utilisation >= 0.9),
  ],
  [
    "Limiter",
    "interactive wait while batch saturates (30% interactive load)",
    `p50 ${ms(limiter.interactiveUnderBatch.interactiveWaitMs.p50)} · p99 ${ms(limiter.interactiveUnderBatch.interactiveWaitMs.p99)} · max ${ms(limiter.interactiveUnderBatch.interactiveWaitMs.max)}`,
    "",
    "",
  ],
  [
    "Limiter",
    `Durable Object, real time ${limiter.durableObject.durationMs / 1000} s, 16 callers`,
    `${num(limiter.durableObject.grants.interactive + limiter.durableObject.grants.batch)} grants (${(limiter.durableObject.grantRateVsLimit * 100).toFixed(0)}% of rpm) · overshoot ${limiter.durableObject.overshoot}`,
    "0",
    verdict(limiter.durableObject.overshoot === 0),
  ],
  [
    "Fetch-back",
    "naive: GET /events/{id} per webhook (1,000 burst)",
    `${fetchBack.naive.callsPerVerifiedEvent.toFixed(3)} calls/verified event`,
    "",
    "",
  ],
  [
    "Fetch-back",
    "coalesced, consumer keeping up with the burst",
    `${fetchBack.keepingUp.callsPerVerifiedEvent.toFixed(3)} calls/verified event`,
    "≤ 0.1",
    verdict(fetchBack.keepingUp.callsPerVerifiedEvent <= 0.1),
  ],
  [
    "Fetch-back",
    "coalesced, whole burst queued before consuming",
    `${fetchBack.behind.callsPerVerifiedEvent.toFixed(3)} calls/verified event`,
    "≤ 0.1",
    verdict(fetchBack.behind.callsPerVerifiedEvent <= 0.1),
  ],
  ["Fetch-back", "consumer run in workerd (batched section above)", `${consumer.batched.apiCallsPerEvent.toFixed(3)} calls/event`, "", ""],
  ["Status API", `get by id (${num(status.transactions)} stored)`, `p50 ${ms(status.get.p50)} · p99 ${ms(status.get.p99)}`, "", ""],
  ["Status API", "list, first page (50)", `p50 ${ms(status.list.p50)} · p99 ${ms(status.list.p99)}`, "", ""],
  ["Status API", "list, status filter + cursor walk (100/page)", `p50 ${ms(status.walk.p50)} · p99 ${ms(status.walk.p99)}`, "", ""],
  ...storageRows(results.storage),
  ...outboxRows(results.outbox),
  ...costRows(results.cost),
];

const date = new Date().toISOString();
const header = ["section", "measure", "result", "target", ""];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) =>
  cells
    .map((c, i) => c.padEnd(widths[i]))
    .join("  ")
    .trimEnd();
const busy = Object.entries(background)
  .map(([k, v]) => `${k} ${v === null ? "?" : `${Math.round(v * 100)}%`}`)
  .join(", ");
const printed = [
  `Smart Router Edge — npm run bench — ${date}`,
  `machine: ${machine.nproc} × ${machine.cpu}, ${machine.memoryGiB} GiB, ${machine.os}; Node ${machine.node}, workerd ${machine.workerd}`,
  `other load on the machine just before each section (CPU busy): ${busy}`,
  "",
  line(header),
  line(widths.map((w) => "-".repeat(w))),
  ...rows.map(line),
];
const wallMs = performance.now() - started;
printed.push("", `wall time ${(wallMs / 1000).toFixed(0)} s; raw figures and method notes in ${path.relative(ROOT, outFile)}`);
if (Object.values(background).some((v) => v !== null && v > 0.25)) {
  printed.push("warning: other processes kept the CPU busy during this run; timings are pessimistic — rerun on a quiet machine.");
}
process.stdout.write(`${printed.join("\n")}\n`);

const method = {
  ingest:
    "Worker: bundle from `wrangler deploy --dry-run`, served by workerd via Miniflare's API on its direct socket (no Miniflare entry worker, no wrangler dev proxy), wrangler.toml bindings, no queue consumer attached. Ceiling: Node + Hono (@hono/node-server) in its own process, same credential check (SHA-256 + constant-time compares, merchant in a Map), body capped at 64 KiB and validated with src's zod schema, in-memory enqueue; no log line. Framework-free Worker (the ingest target's baseline): scripts/bench/lib/plain-edge.mjs, a plain fetch handler (no Hono, no drizzle) doing the edge's work (credential directory in memory from one raw D1 query, SHA-256 + constant-time compares, WEBHOOK_LIMITER, 64 KiB cap, src's zod schema, one JSON log line, WEBHOOKS.send), in a second workerd with the same bindings; loaded in the same rounds. All loaded by scripts/bench/lib/loadgen.mjs (own process, undici Pool, N keep-alive connections, 1 request in flight each, warm-up then fixed duration), worker, framework-free Worker and ceiling alternating over 2 rounds with all servers up; req/s = 200 answers over all rounds, p50/p99 averaged over rounds. Breakdown rows: same generator, GET /health and a wrong password on the worker, then valid deliveries to a second workerd whose entry module swaps env.WEBHOOKS for an in-memory queue (the ceiling's enqueue) around the unchanged bundle. CPU per answered request: user+system time from /proc of the serving processes (worker: its workerd plus the bench process, where Miniflare reads workerd's log lines; ceiling: its Node process) over warm-up and measurement, divided by the answers in both; unlike req/s it does not count time other tenants of the machine take.",
  consumer:
    "The bundle's queue handler invoked with getWorker().queue() (Miniflare), outbound calls to the emulator (Node, unlimited rates, merchant rate_limits 1e6) through the real rate-limiting Durable Object. Events are those of 4242 card payments (3 events per payment) created just before each batch, so a batch holds the newest events. events/s = events / time inside queue() calls. D1 counted by an instrumented entry module wrapping env.DB around the unchanged bundle: stmts = single queries + statements inside db.batch; D1 calls = single queries + db.batch calls (round trips).",
  limiter:
    "Pure pacer (src/rate-limiter/pacer.ts) in 1 ms simulated steps against sandbox/gcra.ts as the server (3000 rpm, burst 20); 5–60 ms one-way latency; answers fed back through observe(). Overshoot = requests the server refuses. Utilisation = accepted / (rpm × minutes + burst) with 50 interactive + 50 batch greedy callers. Interactive wait: 200 greedy batch callers + Poisson interactive calls at 30% of the rate, wait = grant time − wanted time. DO run: 8+8 greedy callers via RPC to the real Durable Object; grant times replayed against gcraTake.",
  fetchBack:
    "Real SmartRouterClient + verifyEvents in Node against the emulator; calls counted by the emulator's /counters. 1,000 events (332 card payments × 3 events + 2 declined cards × 2), verified in queue batches of 100; naive = one GET /events/{id} per event (6 in flight, as verifyEvents does).",
  storage:
    "scripts/bench/storage.mjs (alone: `node scripts/bench/storage.mjs --payments N`). Payments of scripts/stack.mjs's demo mix (SCENARIOS by weight, every lifecycle once first, seeded) made in the emulator in this process (time scale 0.001, 32 lifecycles at once); each webhook it sends becomes a queue message handed to the bundle's queue handler in workerd, 100 a batch, as they arrive (fetch-back through the rate-limiting Durable Object, unlimited rates). Bytes: SQLite dbstat (node:sqlite) over a copy of Miniflare's D1 file with its WAL, SUM(pgsize) per table and per index, indexes counted with their table; divided by the payments. After: the worker's scheduled handler run RETENTION_DAYS + 1 days later, every 5 minutes of that clock, until no new archive object is stored; the copy is VACUUMed before dbstat (freed pages are reused by later rows). R2: the sizes Miniflare lists for the ARCHIVE bucket. events/s = events / time inside queue() calls over the whole run (the database growing to all the payments). Payments per 10 GB = 10^10 / bytes per payment.",
  outbox:
    "scripts/bench/outbox.mjs (alone: `node scripts/bench/outbox.mjs --payments N`). The same demo-mix payments (one seeded scenario sequence) for two merchants side by side in one worker: one with no endpoint, one with one endpoint taking `*`; their webhooks handed to the queue handler 100 a batch, one merchant per batch. Rows written: D1's meta.rows_written of every batch statement and run/all query, by the table the statement writes (instrumented entry module), summed per merchant; outbox = transaction_changes + endpoint_messages + transaction_streams; per change = divided by the merchant's transaction_changes rows (the applied status changes). Delivery: every lane of the second merchant nudged through the endpoint queue's handler, the endpoint answering 204; the claim's UPDATE … RETURNING goes through drizzle's raw() and reports no meta, so it is not in that figure.",
  cost: "scripts/bench/cost.mjs (alone: `node scripts/bench/cost.mjs --payments N`). Payments of the demo mix made in the emulator (time scale 0.001, 32 lifecycles at once); every webhook it fires is POSTed to the worker's edge (workerd direct socket) with the merchant's Basic credential, and wrangler.toml's queue consumers run in Miniflare (real batching, delays, retries); the merchant has a fulfilment URL (answered 204 by the bench). The headline phase is steady: a payment starts only while the merchant's waiting deliveries, those on their way and 4 webhooks per payment in flight stay under half its queue share (QUEUE_SHARE / 2 = 100), and the section fails if it parked one. Then the Cron Trigger RETENTION_DAYS + 1 days later until nothing more is archived, then once more with nothing to do (the fixed cost); bytes per payment after retention are marginal (the shard's compacted bytes minus the same shard's before the first payment, whose empty tables and indexes hold a page each, over the payments; that fixed part shown apart). Last, a burst phase (a quarter of the payments, at least 200) fired as fast as the stack takes them, past the queue share: priced apart, with what a parked delivery costs. Counted by the metered entry (scripts/bench/lib/meter-entry.mjs) around the unchanged bundle, per phase: D1 rows read/written from each statement's meta (batch statements too; first() and raw() are answered through all() for their meta, a read raw() is run a second time for it), queue messages sent/read/acked/retried (1 operation per 64 KB written, read, deleted), Durable Object RPC calls per method and the rate limiter's KV storage calls, R2 calls by method, invocations and log lines. CPU ms: user+system time of the workerd process over the run, divided by the webhooks: an upper bound, since it includes Miniflare's own D1, Queues and Durable Object emulation. Priced with bench/cloudflare-rates.json (marginal list rates, inclusions and the $5 minimum left out; rates to check). Webhooks = POSTs the edge answered.",
  status:
    "10,000 transactions for one merchant (+2,000 for another) seeded with one SQL statement shaped like consumer-written rows, fulfilment rows for captured ones, ANALYZE; sequential requests over one keep-alive connection to workerd's direct socket with real Bearer API keys (12 live keys of the merchant, round robin, so the 600/min per-key limiter never refuses).",
};

mkdirSync(path.dirname(outFile), { recursive: true });
writeFileSync(
  outFile,
  `${JSON.stringify(
    {
      date,
      machine,
      backgroundCpuBusy: background,
      wallSeconds: round(wallMs / 1000, 1),
      settings,
      table: rows.map(([section, measure, result, target, status]) => ({ section, measure, result, target, status })),
      method,
      results,
    },
    (_key, value) => (typeof value === "number" && !Number.isInteger(value) ? round(value, 4) : value),
    2,
  )}\n`,
);
// The results file is committed and the repository's formatter covers bench/**: leave it formatted the way `npm run lint` expects.
spawnSync(path.join(ROOT, "node_modules/.bin/biome"), ["format", "--write", outFile], { cwd: ROOT, stdio: "ignore", timeout: 30_000 });
