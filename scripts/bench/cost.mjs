// Section — what a payment costs. Payments of the demo mix made in the emulator; every webhook it fires goes to the
// worker's edge over HTTP (credential, edge limiter, DeliveryGate admit, WEBHOOKS send), and wrangler.toml's queue
// consumers run for real in Miniflare (verification with fetch-back through the rate-limiting Durable Object, the D1
// commit, DeliveryGate settle, fulfilment nudges and their delivery to the merchant's fulfilment URL). Then the Cron
// Trigger runs RETENTION_DAYS + 1 days later, as the storage section drives it, until nothing more is archived. The
// metered entry (lib/meter-entry.mjs) counts, per phase, D1 rows read and written from each statement's meta, queue
// operations, Durable Object requests and storage calls, R2 operations, invocations and log lines; the counts are priced
// with bench/cloudflare-rates.json.
// Two live phases. The headline is STEADY: payments are started only while the merchant's waiting deliveries (queued or
// parked, not yet settled) stay under half its queue share (src/ingest/backlog.ts QUEUE_SHARE), as for a real merchant
// (10,000 payments a day is ~0.4 webhooks/s), and the bench fails if the steady phase parked a single delivery. Then,
// after retention and the bytes are measured, a BURST: the demo mix fired as fast as the stack takes it, one merchant
// past its queue share, whose deliveries the edge parks in D1; priced apart ("a delivery parked during a flood costs").
// Bytes per payment after retention are marginal: the shard after retention minus the same shard measured before any
// payment (each table and index holds at least one page even empty), over the payments; the fixed pages are shown apart.
//   node scripts/bench/cost.mjs [--payments N] [--burst N] [--seed S]   this section alone (about 3 minutes for 2,000
//   payments); writes bench/results/cost-N.json; --burst 0 leaves the burst phase out
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import "./lib/ts-resolve.mjs";
import { childPids, cpuMs } from "./lib/cpu.mjs";
import { perPayment, tableBytes, withD1Copy } from "./lib/d1-bytes.mjs";
import { demoSandbox } from "./lib/demo-payments.mjs";
import { UNLIMITED } from "./lib/emulator.mjs";
import { round } from "./lib/stats.mjs";
import { buildWorker, observabilityFromWranglerToml, ROOT, startWorker } from "./lib/worker.mjs";

const { makePayment, pickScenario, seededRandom } = await import("../stack.mjs");
const { mapConcurrent } = await import("../../src/lib/concurrency.ts");
const { QUEUE_SHARE } = await import("../../src/ingest/backlog.ts");
const { readingPatch } = await import("../../sandbox/readings.ts");

export const RATES_FILE = path.join(ROOT, "bench/cloudflare-rates.json");
/** Targets of issue 21. */
export const TARGET_DOLLARS_PER_MILLION_WEBHOOKS = 10;
export const TARGET_BYTES_PER_PAYMENT_AFTER_RETENTION = 1000;
const DAY_MS = 86_400_000;
const IN_FLIGHT = 32;
const FULFILMENT_HOST = "fulfil.bench.example";
/** Cron runs a month at `*\/5 * * * *`. */
const CRON_RUNS_PER_MONTH = 12 * 24 * 30;

/** The webhooks queue and its dead-letter queue (wrangler.toml), whose acks and reads settle a merchant's deliveries. */
const WEBHOOKS_QUEUE = "smart-router-webhooks";
const WEBHOOKS_DLQ = "smart-router-webhooks-dlq";
/** The steady phase keeps the merchant's waiting deliveries under half its queue share: the other half is margin for webhooks on their way. */
export const STEADY_WAITING_LIMIT = QUEUE_SHARE / 2;
/** Webhooks a payment in flight is counted for (the demo mix fires 3.15 a payment on average, some lifecycles more). */
const WEBHOOKS_PER_PAYMENT_IN_FLIGHT = 4;
/** How often the steady phase's pacer reads the pipeline (ms). */
const PACER_POLL_MS = 250;
/** Horizon of the steady phase's wait: this long without a payment let through while nothing settles ends the run (ms). */
const PACER_STALL_MS = 180_000;

/** Webhooks in flight to the edge at once (the ingest section's 16 connections): more only makes the local stack drop connections. */
const EDGE_IN_FLIGHT = 16;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const progress = (message) => process.stderr.write(`cost: ${message}\n`);

/** Runs `task` once fewer than `limit` others run; the waiting line ends as tasks finish. */
function limiter(limit) {
  let running = 0;
  const waiting = [];
  return async (task) => {
    if (running >= limit) await new Promise((resolve) => waiting.push(resolve));
    running += 1;
    try {
      return await task();
    } finally {
      running -= 1;
      waiting.shift()?.();
    }
  };
}

/** GET with retries (horizon: 5 tries, 1 s apart) for a local stack too loaded to accept a connection at once. */
async function getWithRetries(read) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (error) {
      if (attempt >= 5) throw error;
      await sleep(1000);
    }
  }
}

/** The entry of `object` under `key`, made by `make` the first time. */
function slot(object, key, make) {
  if (!(key in object)) object[key] = make();
  return object[key];
}

/** Sums the metered counters over the given phases (all when `names` is omitted). */
export function sumPhases(meter, names = Object.keys(meter.phases)) {
  const total = {
    invocations: 0,
    failedInvocations: 0,
    logLines: 0,
    d1Calls: 0,
    d1Statements: 0,
    d1RowsRead: 0,
    d1RowsWritten: 0,
    queueWriteOps: 0,
    queueReadOps: 0,
    queueDeleteOps: 0,
    messagesSent: 0,
    messagesRead: 0,
    messagesAcked: 0,
    messagesRetried: 0,
    delayedSends: 0,
    doRequests: 0,
    doWallMs: 0,
    r2ClassA: 0,
    r2ClassB: 0,
    r2Free: 0,
  };
  for (const name of names) {
    const p = meter.phases[name];
    if (!p) continue;
    total.invocations += p.invocations;
    total.failedInvocations += p.failedInvocations;
    total.logLines += p.logLines;
    total.d1Calls += p.d1.calls;
    total.d1Statements += p.d1.statements;
    total.d1RowsRead += p.d1.rowsRead;
    total.d1RowsWritten += p.d1.rowsWritten;
    for (const sends of Object.values(p.queueSends)) {
      total.messagesSent += sends.messages;
      total.queueWriteOps += sends.ops;
      total.delayedSends += sends.delayed;
    }
    for (const [queue, reads] of Object.entries(p.queueReads)) {
      total.messagesRead += reads.messages;
      total.messagesAcked += reads.acked;
      total.messagesRetried += reads.retried;
      total.queueReadOps += reads.ops;
      // An acked message is deleted (one operation per 64 KB; these bodies are < 1 KB); a dead-lettered one was also written to its DLQ.
      total.queueDeleteOps += reads.acked;
      if (queue.endsWith("-dlq")) total.queueWriteOps += reads.messages;
    }
    for (const object of Object.values(p.durableObjects)) {
      total.doRequests += object.requests;
      total.doWallMs += object.wallMs;
    }
    for (const [method, n] of Object.entries(p.r2)) {
      if (["put", "list", "createMultipartUpload", "resumeMultipartUpload"].includes(method)) total.r2ClassA += n;
      else if (["get", "head"].includes(method)) total.r2ClassB += n;
      else total.r2Free += n;
    }
  }
  return total;
}

/** Whether a D1 statement key (`verb table [set columns]`) writes the edge's parking (parked deliveries and their wake-ups). */
const isParkingStatement = (key) => /^(insert|update|delete|replace) parked_(deliveries|wakeups)\b/.test(key);

/** Deliveries the edge parked in D1 (a re-parked one counts again: each is a parking's insert) over the metered phases. */
export function parkedDeliveries(meter) {
  let parked = 0;
  for (const p of Object.values(meter.phases)) {
    for (const [key, entry] of Object.entries(p.d1.byStatement)) if (/^insert parked_deliveries\b/.test(key)) parked += entry.changes;
  }
  return parked;
}

/**
 * The merchant's deliveries waiting to be settled, as the meter sees them since its reset: sent on the webhooks queue and
 * not yet acked there nor read by its dead-letter queue, plus those parked and not yet deleted.
 */
export function waitingDeliveries(meter) {
  let queued = 0;
  let parked = 0;
  for (const p of Object.values(meter.phases)) {
    queued += p.queueSends.WEBHOOKS?.messages ?? 0;
    queued -= (p.queueReads[WEBHOOKS_QUEUE]?.acked ?? 0) + (p.queueReads[WEBHOOKS_DLQ]?.messages ?? 0);
    for (const [key, entry] of Object.entries(p.d1.byStatement)) {
      if (/^insert parked_deliveries\b/.test(key)) parked += entry.changes;
      else if (/^delete parked_deliveries\b/.test(key)) parked -= entry.changes;
    }
  }
  return Math.max(0, queued) + Math.max(0, parked);
}

/**
 * Whether the steady phase may start one more payment: deliveries waiting at the edge, those the emulator is delivering
 * (`coming`) and the payments in flight (each counted for WEBHOOKS_PER_PAYMENT_IN_FLIGHT webhooks) stay under STEADY_WAITING_LIMIT.
 */
export function steadyGateOpen({ waiting, coming, inFlight }) {
  return waiting + coming + WEBHOOKS_PER_PAYMENT_IN_FLIGHT * (inFlight + 1) <= STEADY_WAITING_LIMIT;
}

/**
 * What the edge's parking cost in a metered run: its statements' D1 rows and its wake-up messages (each written, read
 * and deleted on the webhooks queue), per parked delivery, priced at `rates`.
 */
export function parkingCost(meter, rates) {
  const parked = parkedDeliveries(meter);
  let rowsWritten = 0;
  let rowsRead = 0;
  let wakeups = 0;
  for (const p of Object.values(meter.phases)) {
    wakeups += p.queueSends.WEBHOOKS?.kinds?.resume_parked ?? 0;
    for (const [key, entry] of Object.entries(p.d1.byStatement)) {
      if (!isParkingStatement(key)) continue;
      rowsWritten += entry.rowsWritten;
      rowsRead += entry.rowsRead;
    }
  }
  const usage = {
    ...zeroUsage(),
    d1RowsWritten: rowsWritten,
    d1RowsRead: rowsRead,
    queueWriteOps: wakeups,
    queueReadOps: wakeups,
    queueDeleteOps: wakeups,
  };
  const dollars = price(usage, rates).total;
  return {
    parked,
    rowsWritten,
    rowsRead,
    wakeups,
    rowsWrittenPerParked: parked > 0 ? rowsWritten / parked : null,
    dollarsPerMillionParked: parked > 0 ? (dollars / parked) * 1e6 : null,
  };
}

/** Usage with every counter at zero (for pricing a few lines of the bill). */
function zeroUsage() {
  return { ...sumPhases({ phases: {} }), cpuMs: 0, doRowsRead: 0, doRowsWritten: 0 };
}

/**
 * Bytes per payment a shard keeps after retention beyond what the same schema holds with no payment: `after` is the
 * perPayment() measure of the shard after retention, `empty` the tableBytes() measure of it before the first payment. The marginal figure
 * is the headline; the empty shard's pages (each table and index has at least one) are the fixed overhead, shown apart.
 */
export function marginalBytes(after, empty, payments) {
  const emptyOf = (table) => empty.tables[table]?.bytes ?? 0;
  const tables = after.tables
    .map((t) => ({
      table: t.table,
      rows: t.rows,
      bytes: t.bytes,
      emptyBytes: emptyOf(t.table),
      bytesPerPayment: (t.bytes - emptyOf(t.table)) / payments,
      grossBytesPerPayment: t.bytes / payments,
    }))
    .sort((a, b) => b.bytesPerPayment - a.bytesPerPayment || a.table.localeCompare(b.table));
  const fixedBytes = tables.reduce((sum, t) => sum + t.emptyBytes, 0);
  return {
    bytesPerPayment: (after.bytes - fixedBytes) / payments,
    grossBytesPerPayment: after.bytes / payments,
    fixedBytes,
    fixedBytesPerPayment: fixedBytes / payments,
    tables,
  };
}

/** wrangler.toml's log and trace sampling, as deployed. */
const OBSERVABILITY = observabilityFromWranglerToml();

/**
 * Log events: each console line and, with invocation logs on, each invocation's own log, both at the log sampling rate.
 * Trace spans, counted at the least: each invocation's handler span and each binding call (D1, Durable Object, queue
 * send, R2); outbound fetches are left out. Priced as log events (bench/cloudflare-rates.json says why).
 */
export function observabilityEvents(usage, observability = OBSERVABILITY) {
  const logs = (usage.logLines + (observability.invocationLogs ? usage.invocations : 0)) * observability.logSampling;
  const calls = usage.d1Calls + usage.doRequests + usage.messagesSent + usage.r2ClassA + usage.r2ClassB;
  return { logs, spans: (usage.invocations + calls) * observability.traceSampling };
}

/** Dollars, per line of the bill, for metered usage (`cpuMs` and the Durable Object storage calls given alongside). */
export function price(usage, rates, observability = OBSERVABILITY) {
  const events = observabilityEvents(usage, observability);
  const r = rates.rates;
  const perMillion = (count, rate) => (count * rate) / 1e6;
  const lines = {
    workersRequests: perMillion(usage.invocations, r.workers.requestsPerMillion),
    workersCpu: perMillion(usage.cpuMs, r.workers.cpuMsPerMillion),
    d1RowsRead: perMillion(usage.d1RowsRead, r.d1.rowsReadPerMillion),
    d1RowsWritten: perMillion(usage.d1RowsWritten, r.d1.rowsWrittenPerMillion),
    queues: perMillion(usage.queueWriteOps + usage.queueReadOps + usage.queueDeleteOps, r.queues.operationsPerMillion),
    doRequests: perMillion(usage.doRequests, r.durableObjects.requestsPerMillion),
    doDuration: perMillion((usage.doWallMs / 1000) * r.durableObjects.memoryGB, r.durableObjects.gbSecondsPerMillion),
    doStorage:
      perMillion(usage.doRowsRead, r.durableObjects.sqliteRowsReadPerMillion) +
      perMillion(usage.doRowsWritten, r.durableObjects.sqliteRowsWrittenPerMillion),
    r2: perMillion(usage.r2ClassA, r.r2.classAPerMillion) + perMillion(usage.r2ClassB, r.r2.classBPerMillion),
    logs: perMillion(events.logs, r.workersLogs.eventsPerMillion),
    traces: perMillion(events.spans, r.workersLogs.eventsPerMillion),
  };
  return { lines, total: Object.values(lines).reduce((sum, dollars) => sum + dollars, 0) };
}

/** A merchant in the worker (fulfilment URL set, rates unlimited) and its emulator project, webhooks to the edge with its credential. */
async function openMerchant(emulator, worker, merchantId, reading) {
  const projectId = `test-proj_${merchantId.replace(/[^A-Za-z0-9]/g, "")}`;
  const secretKey = `sk_test_${crypto.randomUUID().replaceAll("-", "")}`;
  await emulator.control("/projects", {
    body: {
      project_id: projectId,
      secret_key: secretKey,
      rates: { primary: UNLIMITED, events: UNLIMITED, sandbox: UNLIMITED, burst: 1000 },
      // Deliveries wait for one of the 16 connections to the edge: a real-time timeout would re-deliver answered webhooks.
      webhook: { max_attempts: 12, backoff_base_ms: 120_000, timeout_ms: 600_000 },
      // A reading of smart-router.md (sandbox/readings.ts); `list-no-data` makes fetch-back verify each event by id.
      ...(reading ? { readings: readingPatch(reading) } : {}),
    },
  });
  const created = await worker.createMerchant(merchantId, projectId, secretKey, {
    rateLimits: { primary_rpm: UNLIMITED, events_rpm: UNLIMITED, sandbox_rpm: UNLIMITED },
  });
  await worker.admin(`/admin/merchants/${merchantId}`, {
    method: "PATCH",
    body: { fulfillment_url: `https://${FULFILMENT_HOST}/orders/${merchantId}` },
  });
  const { username, password, path: edgePath } = created.webhook;
  const url = `https://${encodeURIComponent(username)}:${encodeURIComponent(password)}@edge.bench${edgePath}`;
  await emulator.control(`/projects/${projectId}/webhooks`, { body: { url } });
  const project = `/projects/${projectId}`;
  return {
    project,
    shop: {
      pay: async (input) => (await emulator.control(`${project}/transactions`, { body: input })).body.transaction,
      transaction: async (id) => (await emulator.control(`${project}/transactions/${id}`)).body.transaction,
      act: (id, action, body = {}) => emulator.control(`${project}/transactions/${id}/${action}`, { body }),
    },
    async quiet() {
      const { backlog } = (await emulator.control(`${project}/counters`)).body;
      return backlog.timers === 0 && backlog.parked === 0 && backlog.in_flight === 0;
    },
    /** Webhooks the emulator is delivering or holds for a retry: about to reach the edge. */
    async coming() {
      const { backlog } = (await emulator.control(`${project}/counters`)).body;
      return backlog.parked + backlog.in_flight;
    },
  };
}

/**
 * Waits until the pipeline is idle: every message sent acked (or dead-lettered), no counter moving for 3 polls, the
 * emulator quiet. Horizon: `maxMs` (delayed re-checks and wake-ups wait in Miniflare in real time); answers whether it drained.
 */
async function drain(meterOf, quiet, maxMs, logs = null) {
  const deadline = Date.now() + maxMs;
  let last = "";
  let still = 0;
  while (Date.now() < deadline) {
    const total = sumPhases(await meterOf());
    const signature = JSON.stringify([total.messagesSent, total.messagesRead, total.d1Statements, total.invocations]);
    const pending = total.messagesSent - total.messagesAcked;
    if (signature !== last) {
      progress(
        `${total.invocations} invocations (${total.failedInvocations} failed), ${total.messagesSent} messages sent, ${total.messagesAcked} acked, ${total.messagesRetried} retried`,
      );
      if (logs?.recent.length) progress(`  last worker log line: ${logs.recent.at(-1).slice(0, 400)}`);
    }
    still = signature === last && pending <= 0 && (await quiet()) ? still + 1 : 0;
    if (still >= 3) return true;
    last = signature;
    await sleep(700);
  }
  return false;
}

/**
 * The emulator (its webhooks POSTed to the worker's edge, 16 in flight) and the metered worker with wrangler.toml's queue
 * consumers; the worker's outbound calls go to the emulator, or are answered 204 for the fulfilment URL.
 */
async function startCostStack(build) {
  const edgeAnswers = {};
  const outboundCalls = { smartRouter: 0, fulfilment: 0 };
  const toEdge = limiter(EDGE_IN_FLIGHT);
  let worker;
  const post = async (request, body) => {
    const response = await fetch(new URL(new URL(request.url).pathname, worker.url), { method: "POST", headers: request.headers, body });
    await response.arrayBuffer();
    return response;
  };
  const emulator = demoSandbox({
    onDelivery: () => {},
    // Smart Router's webhook, sent on to the worker's edge as it came (Basic credential from the endpoint URL).
    transport: async (request) => {
      const body = await request.text();
      try {
        const response = await toEdge(() => post(request, body));
        edgeAnswers[response.status] = (edgeAnswers[response.status] ?? 0) + 1;
        return new Response(null, { status: response.status });
      } catch (error) {
        // A connection reset by the loaded local stack: Smart Router retries the delivery, as it would any failed one.
        edgeAnswers.connectionError = (edgeAnswers.connectionError ?? 0) + 1;
        return new Response(`bench: ${error instanceof Error ? error.message : String(error)}`, { status: 502 });
      }
    },
  });
  worker = await startWorker(build, {
    metered: true,
    queueConsumers: true,
    outbound: async (request) => {
      if (new URL(request.url).host === FULFILMENT_HOST) {
        outboundCalls.fulfilment += 1;
        return new Response(null, { status: 204 });
      }
      outboundCalls.smartRouter += 1;
      return emulator.fetch(request);
    },
  });
  const meterOf = async (reset = false) =>
    reset
      ? (await worker.call("/__bench/meter", { method: "POST" })).json
      : getWithRetries(async () => (await worker.call("/__bench/meter")).json);
  return { emulator, worker, edgeAnswers, outboundCalls, meterOf, workerd: childPids(process.pid, "workerd") };
}

/**
 * The steady phase's pacer: `enter()` waits until steadyGateOpen lets one more payment start (reading the meter and the
 * emulator's deliveries every PACER_POLL_MS), `leave()` when its merchant actions are done. The wait ends when the gate
 * opens; its horizon: PACER_STALL_MS without a payment let through and nothing settled throws.
 */
function steadyPacer(stack, merchant) {
  let inFlight = 0;
  let maxWaiting = 0;
  let waitedMs = 0;
  const state = async () => ({
    waiting: waitingDeliveries(await stack.meterOf()),
    coming: await merchant.coming(),
  });
  return {
    stats: () => ({ maxWaiting, summedGateWaitSeconds: round(waitedMs / 1000, 1) }),
    async enter() {
      const started = Date.now();
      let lastWaiting = Number.POSITIVE_INFINITY;
      let progressAt = started;
      for (;;) {
        const now = await state();
        maxWaiting = Math.max(maxWaiting, now.waiting);
        if (steadyGateOpen({ ...now, inFlight })) break;
        if (now.waiting < lastWaiting) progressAt = Date.now();
        lastWaiting = now.waiting;
        if (Date.now() - progressAt > PACER_STALL_MS) throw new Error(`cost: steady phase stalled, ${now.waiting} deliveries waiting`);
        await sleep(PACER_POLL_MS);
      }
      inFlight += 1;
      waitedMs += Date.now() - started;
    },
    leave() {
      inFlight -= 1;
    },
  };
}

/** Edge answers counted since `before` (a copy of the running count). */
const answersSince = (now, before) =>
  Object.fromEntries(
    Object.entries(now)
      .map(([status, n]) => [status, n - (before[status] ?? 0)])
      .filter(([, n]) => n > 0),
  );

/** The payments made, each through `pacer` when given (the steady phase), as fast as IN_FLIGHT lets otherwise (the burst). */
async function makePayments(merchant, { payments, seed, pacer }) {
  const random = seededRandom(seed);
  const scenarios = {};
  await mapConcurrent(
    Array.from({ length: payments }, (_, index) => index),
    IN_FLIGHT,
    async (index) => {
      await pacer?.enter();
      try {
        const scenario = pickScenario(random, index);
        scenarios[scenario.name] = (scenarios[scenario.name] ?? 0) + 1;
        const payment = await makePayment(merchant.shop, scenario, { random, pollMs: 2, timeoutMs: 60_000 });
        await payment.done;
      } finally {
        pacer?.leave();
      }
    },
  );
  return scenarios;
}

/** The payments, their webhooks through the edge and the queues, until the pipeline drains; answers the live meter. */
async function driveLive(stack, merchant, { payments, seed, steady }) {
  const { worker, meterOf, workerd, edgeAnswers } = stack;
  const answersBefore = { ...edgeAnswers };
  const pacer = steady ? steadyPacer(stack, merchant) : null;
  const cpuBefore = cpuMs(workerd);
  const started = performance.now();
  const ticker = setInterval(async () => {
    const meter = await meterOf().catch(() => ({ phases: {} }));
    const total = sumPhases(meter);
    progress(
      `${steady ? "steady" : "burst"}: ${total.invocations} invocations, ${total.messagesSent} sent, ${total.messagesAcked} acked, ${waitingDeliveries(meter)} waiting, ${parkedDeliveries(meter)} parked; edge ${JSON.stringify(answersSince(edgeAnswers, answersBefore))}`,
    );
  }, 5000);
  let scenarios;
  try {
    scenarios = await makePayments(merchant, { payments, seed, pacer });
  } finally {
    clearInterval(ticker);
  }
  progress(`${payments} payments made; waiting for the pipeline to drain`);
  const drained = await drain(meterOf, merchant.quiet, Number(process.env.COST_DRAIN_MS ?? 180_000), worker.logs);
  const seconds = (performance.now() - started) / 1000;
  const meter = await meterOf(true);
  const answers = answersSince(edgeAnswers, answersBefore);
  return { scenarios, meter, cpuMs: cpuMs(workerd) - cpuBefore, seconds, drained, edgeAnswers: answers, pacing: pacer?.stats() ?? null };
}

/**
 * The Cron Trigger RETENTION_DAYS + 1 days later, run after run until a run archives nothing more and writes what the
 * one before wrote (pruning, which follows archiving in pages, is done too; horizon: 200 runs); then once more, the
 * fixed cost of a run with nothing left to do. Answers both meters.
 */
async function runRetention(stack, merchant, shard, retentionDays) {
  const { worker, meterOf, workerd } = stack;
  const later = Date.now() + (retentionDays + 1) * DAY_MS;
  const handler = await worker.worker();
  const cronBefore = cpuMs(workerd);
  let runs = 0;
  let archived = -1;
  let writtenBefore = 0;
  let lastRunWritten = -1;
  for (; runs < 200; runs++) {
    await handler.scheduled({ scheduledTime: new Date(later + runs * 300_000), cron: "*/5 * * * *" });
    await drain(meterOf, merchant.quiet, 20_000);
    const { n } = await shard.prepare("SELECT count(*) AS n FROM archive_objects WHERE status = 'stored'").first();
    const written = sumPhases(await meterOf()).d1RowsWritten;
    const runWritten = written - writtenBefore;
    writtenBefore = written;
    progress(`cron run ${runs + 1}: ${n} archive objects stored, ${runWritten} D1 rows written`);
    if (n === archived && Math.abs(runWritten - lastRunWritten) <= Math.max(10, lastRunWritten * 0.1)) break;
    archived = n;
    lastRunWritten = runWritten;
  }
  const retention = { meter: await meterOf(true), cpuMs: cpuMs(workerd) - cronBefore, runs: runs + 1, archived };
  const idleBefore = cpuMs(workerd);
  await handler.scheduled({ scheduledTime: new Date(later + (runs + 1) * 300_000), cron: "*/5 * * * *" });
  await drain(meterOf, merchant.quiet, 30_000);
  const idle = { meter: await meterOf(true), cpuMs: cpuMs(workerd) - idleBefore };
  return { retention, idle };
}

/** A meter's totals with the CPU measured beside it and the Durable Objects' storage rows. */
function usageOf(meter, cpu) {
  const storage = Object.values(meter.durableObjectStorage);
  return {
    ...sumPhases(meter),
    cpuMs: cpu,
    doRowsRead: storage.reduce((sum, s) => sum + s.gets, 0),
    doRowsWritten: storage.reduce((sum, s) => sum + s.puts + s.deletes, 0),
  };
}

/**
 * Usage and bill: live, plus retention beyond what every cron run does anyway (the idle run, priced apart as fixed).
 * `retentionShare` scales the retention counted (the burst phase takes the steady phase's retention per webhook).
 */
function billOf({ live, retention, idle }, rates, { webhooks, payments, bytesPerPayment, retentionShare = 1 }) {
  const liveUsage = usageOf(live.meter, live.cpuMs);
  const retentionUsage = usageOf(retention.meter, retention.cpuMs);
  const idleUsage = usageOf(idle.meter, idle.cpuMs);
  const retentionBeyondIdle = Object.fromEntries(
    Object.keys(retentionUsage).map((key) => [key, retentionShare * Math.max(0, retentionUsage[key] - retention.runs * idleUsage[key])]),
  );
  const whole = Object.fromEntries(Object.keys(liveUsage).map((key) => [key, liveUsage[key] + retentionBeyondIdle[key]]));
  const bill = price(whole, rates);
  const idleBill = price(idleUsage, rates);
  return {
    usage: { live: liveUsage, retention: retentionUsage, retentionBeyondIdle, whole, idleCronRun: idleUsage },
    perWebhook: Object.fromEntries(Object.entries(whole).map(([key, value]) => [key, value / webhooks])),
    perPayment: Object.fromEntries(Object.entries(whole).map(([key, value]) => [key, value / payments])),
    bill: {
      rates: { taken: rates.taken, file: path.relative(ROOT, RATES_FILE) },
      lines: bill.lines,
      total: bill.total,
      dollarsPerMillionWebhooks: (bill.total / webhooks) * 1e6,
      dollarsPerMillionPayments: (bill.total / payments) * 1e6,
      linesPerMillionWebhooks: Object.fromEntries(Object.entries(bill.lines).map(([line, dollars]) => [line, (dollars / webhooks) * 1e6])),
      idleCronRunDollars: idleBill.total,
      idleCronDollarsPerMonth: idleBill.total * CRON_RUNS_PER_MONTH,
      d1StoragePerMonthPerMillionPaymentsKept:
        bytesPerPayment === null ? null : ((bytesPerPayment * 1e6) / 1e9) * rates.rates.d1.storagePerGBMonth,
    },
  };
}

/** Webhooks the edge answered (a connection reset never reached it, or reached it unanswered: not counted). */
const answered = (edgeAnswers) =>
  Object.entries(edgeAnswers).reduce((sum, [status, n]) => (status === "connectionError" ? sum : sum + n), 0);

/** Webhook-queue batches and their mean size (the consumer's batch-level reads weigh more per webhook in small batches). */
function webhookBatches(meter) {
  let batches = 0;
  let messages = 0;
  for (const p of Object.values(meter.phases)) {
    batches += p.queueReads[WEBHOOKS_QUEUE]?.batches ?? 0;
    messages += p.queueReads[WEBHOOKS_QUEUE]?.messages ?? 0;
  }
  return { batches, meanSize: batches > 0 ? round(messages / batches, 1) : null };
}

/**
 * The burst phase beside the steady headline: its live counts plus the steady phase's retention per webhook (parking
 * leaves no row to retain), its parking's own cost per parked delivery, and what it adds per webhook over the steady phase.
 */
function burstFigures(burst, steady, { retention, idle }, rates) {
  const webhooks = answered(burst.edgeAnswers);
  const billed = billOf({ live: burst, retention, idle }, rates, {
    webhooks,
    payments: burst.payments,
    bytesPerPayment: null,
    retentionShare: webhooks / steady.webhooks,
  });
  const parking = parkingCost(burst.meter, rates);
  return {
    payments: burst.payments,
    seed: burst.seed,
    webhooks,
    edgeAnswers: burst.edgeAnswers,
    liveSeconds: round(burst.seconds, 1),
    drained: burst.drained,
    webhookBatches: webhookBatches(burst.meter),
    parkedDeliveries: parking.parked,
    parkedShare: webhooks > 0 ? parking.parked / webhooks : null,
    parking,
    perWebhook: billed.perWebhook,
    bill: {
      dollarsPerMillionWebhooks: billed.bill.dollarsPerMillionWebhooks,
      dollarsPerMillionPayments: billed.bill.dollarsPerMillionPayments,
      linesPerMillionWebhooks: billed.bill.linesPerMillionWebhooks,
    },
    overSteady: {
      d1RowsWrittenPerWebhook: billed.perWebhook.d1RowsWritten - steady.perWebhook.d1RowsWritten,
      dollarsPerMillionWebhooks: billed.bill.dollarsPerMillionWebhooks - steady.bill.dollarsPerMillionWebhooks,
    },
    statements: statementTable(burst.meter, { phases: {} }, webhooks).filter((row) => row.rowsWritten > 0),
  };
}

/** Each phase's counts over live and retention, with its dollars per million webhooks (CPU and DO storage left out). */
function phaseTable(live, retention, webhooks, rates) {
  return Object.fromEntries(
    [...new Set([...Object.keys(live.phases), ...Object.keys(retention.phases)])].map((name) => {
      const [a, b] = [live, retention].map((meter) => sumPhases(meter, [name]));
      const sum = Object.fromEntries(Object.keys(a).map((key) => [key, a[key] + b[key]]));
      const dollars = price({ ...sum, cpuMs: 0, doRowsRead: 0, doRowsWritten: 0 }, rates).total;
      return [name, { ...sum, dollarsPerMillionWebhooksWithoutCpu: (dollars / webhooks) * 1e6 }];
    }),
  );
}

/** The shard's bytes per table, compacted (see tableBytes), or null when its SQLite file is not known. */
const shardBytes = (shardFile) => (shardFile ? withD1Copy(shardFile, (db) => tableBytes(db, { vacuum: true })) : null);

/**
 * The section: a merchant; the shard measured with no payment; the steady phase (which must park nothing); retention;
 * the shard measured again; then the burst phase (`burstPayments`, 0 for none). Answers the report costRows reads.
 */
export async function benchCost(
  build,
  { payments = 2000, seed = 14, retentionDays = 30, burstPayments = defaultBurst(payments), reading = null } = {},
) {
  const rates = JSON.parse(readFileSync(RATES_FILE, "utf8"));
  const stack = await startCostStack(build);
  const { emulator, worker, outboundCalls, meterOf } = stack;
  try {
    const merchantId = "bench-cost";
    const merchant = await openMerchant(emulator, worker, merchantId, reading);
    const shard = await worker.d1For(merchantId);
    const shardFile = worker.databases.find((database) => database.db === shard)?.file ?? null;
    const empty = shardBytes(shardFile);
    await meterOf(true);
    const live = await driveLive(stack, merchant, { payments, seed, steady: true });
    const parkedWhileSteady = parkedDeliveries(live.meter);
    // The headline is a merchant below its queue share: a steady phase that parked is not one, and fails the section.
    if (parkedWhileSteady > 0) throw new Error(`cost: the steady phase parked ${parkedWhileSteady} deliveries (pacing failed)`);
    const { retention, idle } = await runRetention(stack, merchant, shard, retentionDays);
    const steadyCalls = { ...outboundCalls };
    const truth = (await emulator.control(`${merchant.project}/truth`)).body;
    const afterMeasure = shardBytes(shardFile);
    const after = afterMeasure && empty ? marginalBytes(perPayment(afterMeasure, payments), empty, payments) : null;
    const indexes = shardFile ? withD1Copy(shardFile, (db) => indexColumns(db)) : {};
    const webhooks = answered(live.edgeAnswers);
    const steady = {
      ...steadyReport({ live, retention, idle }, rates, { payments, seed, webhooks, after, indexes }),
      events: truth.events.length,
      reading: reading ?? "default",
      retention: { days: retentionDays, cronRuns: retention.runs, archiveObjects: retention.archived },
    };
    let burst = null;
    if (burstPayments > 0) {
      const run = await driveLive(stack, merchant, { payments: burstPayments, seed: seed + 1, steady: false });
      burst = burstFigures({ ...run, payments: burstPayments, seed: seed + 1 }, steady, { retention, idle }, rates);
    }
    return { ...steady, outboundCalls: steadyCalls, burst, workerLogErrors: worker.logs.errors, workerLogWarnings: worker.logs.warnings };
  } finally {
    await worker.dispose();
    emulator.close();
  }
}

/** Burst payments by default: a quarter of the steady phase's, at least 200 (enough to pass the queue share). */
function defaultBurst(payments) {
  return Math.max(200, Math.round(payments / 4));
}

/** The steady phase's report: the headline bill, bytes, phases, statements and index costs. */
function steadyReport({ live, retention, idle }, rates, { payments, seed, webhooks, after, indexes }) {
  const statements = statementTable(live.meter, retention.meter, webhooks, idle.meter, retention.runs);
  return {
    payments,
    seed,
    scenarios: live.scenarios,
    webhooks,
    edgeAnswers: live.edgeAnswers,
    liveSeconds: round(live.seconds, 1),
    drained: live.drained,
    steady: {
      waitingLimit: STEADY_WAITING_LIMIT,
      queueShare: QUEUE_SHARE,
      parkedDeliveries: parkedDeliveries(live.meter),
      ...live.pacing,
      webhookBatches: webhookBatches(live.meter),
    },
    ...billOf({ live, retention, idle }, rates, { webhooks, payments, bytesPerPayment: after?.bytesPerPayment ?? null }),
    bytesPerPaymentAfterRetention: after?.bytesPerPayment ?? null,
    grossBytesPerPaymentAfterRetention: after?.grossBytesPerPayment ?? null,
    fixedBytesAfterRetention: after ? { bytes: after.fixedBytes, perPayment: after.fixedBytesPerPayment } : null,
    afterTables:
      after?.tables.map((t) => ({
        table: t.table,
        rows: t.rows,
        bytesPerPayment: round(t.bytesPerPayment, 1),
        grossBytesPerPayment: round(t.grossBytesPerPayment, 1),
        emptyBytes: t.emptyBytes,
      })) ?? [],
    phases: phaseTable(live.meter, retention.meter, webhooks, rates),
    statements,
    phaseStatements: phaseStatements({ live: live.meter, retention: retention.meter }, webhooks),
    indexCosts: indexCosts(statements, indexes, webhooks),
    idleCronStatements: statementTable(idle.meter, { phases: {} }, 1).filter((row) => row.rowsWritten > 0 || row.rowsRead > 100),
    durableObjects: {
      live: durableObjectTable(live.meter),
      retention: durableObjectTable(retention.meter),
      storage: live.meter.durableObjectStorage,
    },
    indexes,
  };
}

/**
 * Rows written per webhook by `verb table [set columns]`, summed over all phases, largest first; `idleRuns` times the
 * idle cron run's statements taken out (the fixed cost, counted apart).
 */
function statementTable(live, retention, webhooks, idle = { phases: {} }, idleRuns = 0) {
  const rows = {};
  for (const [meter, times] of [
    [live, 1],
    [retention, 1],
    [idle, -idleRuns],
  ]) {
    for (const p of Object.values(meter.phases)) {
      for (const [key, entry] of Object.entries(p.d1.byStatement)) {
        const row = slot(rows, key, () => ({ statements: 0, changes: 0, rowsRead: 0, rowsWritten: 0 }));
        for (const field of Object.keys(row)) row[field] = Math.max(0, row[field] + times * entry[field]);
      }
    }
  }
  return Object.entries(rows)
    .map(([key, row]) => ({
      key,
      ...row,
      changesPerWebhook: round(row.changes / webhooks, 3),
      rowsWrittenPerWebhook: round(row.rowsWritten / webhooks, 3),
      rowsReadPerWebhook: round(row.rowsRead / webhooks, 2),
    }))
    .sort((a, b) => b.rowsWritten - a.rowsWritten || b.rowsRead - a.rowsRead);
}

/** Rows written per webhook by statement, per run (live, retention) and phase: where each phase's rows go. */
function phaseStatements(meters, webhooks) {
  const out = {};
  for (const [run, meter] of Object.entries(meters)) {
    for (const [phase, p] of Object.entries(meter.phases)) {
      const written = Object.entries(p.d1.byStatement)
        .filter(([, entry]) => entry.rowsWritten > 0)
        .sort(([, a], [, b]) => b.rowsWritten - a.rowsWritten)
        .map(([key, entry]) => [key, round(entry.rowsWritten / webhooks, 3)]);
      if (written.length > 0) out[`${run} ${phase}`] = Object.fromEntries(written);
    }
  }
  return out;
}

function durableObjectTable(meter) {
  const out = {};
  for (const p of Object.values(meter.phases)) {
    for (const [binding, entry] of Object.entries(p.durableObjects)) {
      const row = slot(out, binding, () => ({ requests: 0, methods: {} }));
      row.requests += entry.requests;
      for (const [method, n] of Object.entries(entry.methods)) row.methods[method] = (row.methods[method] ?? 0) + n;
    }
  }
  return out;
}

/**
 * Rows written per webhook that each index costs, estimated from the statements run: every row an INSERT (or upsert)
 * touches writes one entry in each index of its table (a partial index: only rows matching its WHERE, so the estimate is
 * its ceiling); an UPDATE writes one in each index holding a column it sets; a DELETE counts its rows only (as D1's meta
 * reports it here). `measured` beside `estimated` (the table's rows plus its indexes' entries) shows how far it holds.
 */
export function indexCosts(statements, indexes, webhooks) {
  const tables = {};
  for (const { key, changes, rowsWritten } of statements) {
    const match = /^(insert|update|delete|replace) (\w+)(?: set (.*))?$/.exec(key);
    if (!match) continue;
    const [, verb, table, set] = match;
    const entry = slot(tables, table, () => ({ rowChanges: 0, measured: 0, indexes: {} }));
    entry.rowChanges += changes;
    entry.measured += rowsWritten;
    const columns = new Set(verb === "update" ? (set ?? "").split(",") : []);
    for (const [name, { columns: indexed }] of Object.entries(indexes[table] ?? {})) {
      const touched = verb === "update" ? indexed.some((column) => column !== null && columns.has(column)) : verb !== "delete";
      entry.indexes[name] = (entry.indexes[name] ?? 0) + (touched ? changes : 0);
    }
  }
  return Object.entries(tables)
    .map(([table, entry]) => {
      const indexRows = Object.values(entry.indexes).reduce((sum, n) => sum + n, 0);
      return {
        table,
        measuredPerWebhook: round(entry.measured / webhooks, 3),
        estimatedPerWebhook: round((entry.rowChanges + indexRows) / webhooks, 3),
        rowsPerWebhook: round(entry.rowChanges / webhooks, 3),
        indexes: Object.fromEntries(Object.entries(entry.indexes).map(([name, n]) => [name, round(n / webhooks, 3)])),
      };
    })
    .sort((a, b) => b.measuredPerWebhook - a.measuredPerWebhook);
}

/** Every index of our tables with its columns (for the rows-written-per-index estimate). */
function indexColumns(db) {
  const out = {};
  for (const { name, tbl_name: table, sql } of db
    .prepare(
      "SELECT name, tbl_name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name NOT LIKE 'sqlite_%' AND tbl_name NOT LIKE '_cf_%' AND tbl_name NOT LIKE 'd1_%'",
    )
    .all()) {
    const columns = db
      .prepare(`PRAGMA index_info("${name.replaceAll('"', '""')}")`)
      .all()
      .map((c) => c.name);
    slot(out, table, () => ({}))[name] = { columns, partial: /\bwhere\b/i.test(sql ?? "") };
  }
  return out;
}

/** The section's rows of the bench table: [section, measure, result, target, status]. */
export function costRows(cost) {
  const money = (value) => `$${value < 1 ? value.toFixed(3) : value.toFixed(2)}`;
  const per = (value, digits = 2) => value.toFixed(digits);
  const w = cost.perWebhook;
  const verdict = (ok) => (ok ? "met" : "MISSED");
  const lines = cost.bill.linesPerMillionWebhooks;
  return [
    [
      "Cost",
      `per million webhooks, STEADY (${cost.webhooks.toLocaleString("en-US")} webhooks of ${cost.payments.toLocaleString("en-US")} payments, demo mix${cost.reading && cost.reading !== "default" ? `, reading ${cost.reading}` : ""}, paced under ${cost.steady.waitingLimit} waiting deliveries so none is parked; edge + queues + fulfilment + retention beyond the cron's fixed run; rates of ${cost.bill.rates.taken}, to check)`,
      `${money(cost.bill.dollarsPerMillionWebhooks)} · ${money(cost.bill.dollarsPerMillionPayments)} per million payments`,
      `≤ $${TARGET_DOLLARS_PER_MILLION_WEBHOOKS}`,
      verdict(cost.bill.dollarsPerMillionWebhooks <= TARGET_DOLLARS_PER_MILLION_WEBHOOKS),
    ],
    [
      "Cost",
      "  D1 per webhook: rows written · rows read",
      `${per(w.d1RowsWritten)} · ${per(w.d1RowsRead, 1)} → ${money(lines.d1RowsWritten)} + ${money(lines.d1RowsRead)} per million`,
      "",
      "",
    ],
    [
      "Cost",
      "  Queues per webhook: messages sent · operations (64 KB writes, reads, deletes)",
      `${per(w.messagesSent)} · ${per(w.queueWriteOps + w.queueReadOps + w.queueDeleteOps)} → ${money(lines.queues)} per million`,
      "",
      "",
    ],
    [
      "Cost",
      "  Durable Objects per webhook: requests (limiter, DeliveryGate) · storage rows written",
      `${per(w.doRequests)} · ${per(w.doRowsWritten)} → ${money(lines.doRequests + lines.doDuration + lines.doStorage)} per million`,
      "",
      "",
    ],
    [
      "Cost",
      "  Smart Router calls per webhook (fetch-back; an events list page stands for 5 or more of a project's events in one batch, fewer are fetched by id, each call with 2 limiter requests)",
      `${per(cost.outboundCalls.smartRouter / cost.webhooks)} (webhook batches of ${cost.steady.webhookBatches.meanSize ?? "no"} messages on average)`,
      "",
      "",
    ],
    [
      "Cost",
      "  Workers per webhook: invocations · CPU ms (workerd process, upper bound)",
      `${per(w.invocations)} · ${per(w.cpuMs)} → ${money(lines.workersRequests)} + ${money(lines.workersCpu)} per million`,
      "",
      "",
    ],
    [
      "Cost",
      `  Workers Logs per webhook: log lines${OBSERVABILITY.invocationLogs ? " + invocation logs" : ""} (sampled ${OBSERVABILITY.logSampling}) · trace spans (sampled ${OBSERVABILITY.traceSampling})`,
      `${per(observabilityEvents(w).logs)} · ${per(observabilityEvents(w).spans)} → ${money(lines.logs)} + ${money(lines.traces)} per million`,
      "",
      "",
    ],
    [
      "Cost",
      "  R2 per payment: Class A · Class B operations",
      `${per(cost.perPayment.r2ClassA, 3)} · ${per(cost.perPayment.r2ClassB, 3)} → ${money(lines.r2)} per million webhooks`,
      "",
      "",
    ],
    [
      "Cost",
      "  Cron Trigger run once retention is done (fixed: every 5 minutes; mostly the event-log backstop re-applying recent events)",
      `${money(cost.bill.idleCronDollarsPerMonth)} per month`,
      "",
      "",
    ],
    [
      "Cost",
      `D1 bytes per payment after retention (${cost.retention.days} days), marginal: the shard's bytes beyond the same schema with no payment`,
      `${Math.round(cost.bytesPerPaymentAfterRetention).toLocaleString("en-US")} B · ${money(cost.bill.d1StoragePerMonthPerMillionPaymentsKept)} per month per million payments kept`,
      "≤ 1,000 B",
      verdict(cost.bytesPerPaymentAfterRetention <= TARGET_BYTES_PER_PAYMENT_AFTER_RETENTION),
    ],
    ...(cost.fixedBytesAfterRetention
      ? [
          [
            "Cost",
            "  fixed: the empty schema's pages (each table and index holds one even empty), not per payment",
            `${Math.round(cost.fixedBytesAfterRetention.bytes / 1024).toLocaleString("en-US")} KB (${Math.round(cost.fixedBytesAfterRetention.perPayment)} B a payment at ${cost.payments.toLocaleString("en-US")}; ${Math.round(cost.grossBytesPerPaymentAfterRetention).toLocaleString("en-US")} B with it)`,
            "",
            "",
          ],
        ]
      : []),
    ...burstRows(cost.burst, money),
  ];
}

/** The burst phase's rows: a flood past the queue share, priced apart from the steady headline. */
function burstRows(burst, money) {
  if (!burst) return [];
  const parking = burst.parking;
  return [
    [
      "Cost",
      `BURST, not the headline: ${burst.webhooks.toLocaleString("en-US")} webhooks of ${burst.payments.toLocaleString("en-US")} payments fired as fast as the stack takes them, one merchant past its queue share (${burst.parkedDeliveries.toLocaleString("en-US")} parked, ${Math.round((burst.parkedShare ?? 0) * 100)} %)`,
      `${money(burst.bill.dollarsPerMillionWebhooks)} per million webhooks (${burst.overSteady.dollarsPerMillionWebhooks >= 0 ? "+" : "−"}${money(Math.abs(burst.overSteady.dollarsPerMillionWebhooks))} over steady; D1 rows written ${burst.perWebhook.d1RowsWritten.toFixed(2)} a webhook)`,
      "",
      "",
    ],
    [
      "Cost",
      "  a delivery parked during a flood costs (parking's D1 statements and wake-up messages, per parked delivery)",
      parking.parked > 0
        ? `+${parking.rowsWrittenPerParked.toFixed(2)} D1 rows written · +${money(parking.dollarsPerMillionParked)} per million parked deliveries`
        : "nothing parked",
      "",
      "",
    ],
  ];
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      payments: { type: "string", default: "2000" },
      burst: { type: "string" },
      seed: { type: "string", default: "14" },
      reading: { type: "string" },
    },
  });
  const build = buildWorker();
  try {
    const payments = Number(values.payments);
    const burstPayments = values.burst === undefined ? defaultBurst(payments) : Number(values.burst);
    const reading = values.reading ?? null;
    const cost = await benchCost(build, { payments, seed: Number(values.seed), burstPayments, reading });
    const rows = costRows(cost).map((row) => [row[1], row[2], row[3] ? `${row[3]} ${row[4]}` : ""]);
    const width = Math.max(...rows.map(([measure]) => measure.length));
    for (const [measure, result, target] of rows) process.stdout.write(`${measure.padEnd(width)}  ${result}  ${target}\n`);
    const rounded = (_key, value) => (typeof value === "number" && !Number.isInteger(value) ? round(value, 4) : value);
    const json = `${JSON.stringify(cost, rounded, 2)}\n`;
    const file = path.join(ROOT, `bench/results/cost-${payments}${reading ? `-${reading}` : ""}.json`);
    writeFileSync(file, json);
    process.stdout.write(json);
    progress(`written: ${path.relative(ROOT, file)}`);
  } finally {
    build.cleanup();
  }
}
