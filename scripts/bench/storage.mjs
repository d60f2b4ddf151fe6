// Section — storage (issue 14): what a payment costs in D1, per table with its indexes, over the payment mix of
// `npm run demo` (scripts/stack.mjs SCENARIOS) driven through the real path: the emulator fires each payment's events,
// its webhooks are handed to the bundled worker's queue handler in workerd, which verifies them by fetch-back and commits
// them to D1 (a SQLite file Miniflare keeps). The file is then read with SQLite's dbstat (node:sqlite), before and after
// the retention step (the Cron Trigger, run RETENTION_DAYS + 1 days later) moves the histories to R2.
//   node scripts/bench/storage.mjs [--payments N]     this section alone (about 2 minutes for 10,000 payments)
import { statSync } from "node:fs";
import { parseArgs } from "node:util";
import "./lib/ts-resolve.mjs";
import { d1Files, perPayment, tableBytes, withD1Copy } from "./lib/d1-bytes.mjs";
import { demoSandbox, queueBatch } from "./lib/demo-payments.mjs";
import { round } from "./lib/stats.mjs";
import { buildWorker, startWorker } from "./lib/worker.mjs";

const { makePayment, pickScenario, seededRandom } = await import("../stack.mjs");
const { mapConcurrent } = await import("../../src/lib/concurrency.ts");

/** D1's limit per database (Cloudflare's "10 GB", decimal). */
const D1_LIMIT_BYTES = 10e9;
const DAY_MS = 86_400_000;
/** Payments driven at once: the emulator runs in this process, so this only bounds the lifecycles waiting on a status. */
const IN_FLIGHT = 32;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The D1 database's SQLite file under Miniflare's persistence directory (the largest .sqlite under d1/). */
function d1File(persist) {
  const files = d1Files(persist);
  if (files.length === 0) throw new Error(`no D1 SQLite file under ${persist}`);
  return files.sort((a, b) => statSync(b).size - statSync(a).size)[0];
}

/** Every object of an R2 bucket: count and bytes (pages of 1,000 until the listing ends). */
async function bucketSize(bucket) {
  let objects = 0;
  let bytes = 0;
  let cursor;
  for (;;) {
    const page = await bucket.list({ cursor, limit: 1000 });
    objects += page.objects.length;
    bytes += page.objects.reduce((sum, object) => sum + object.size, 0);
    if (!page.truncated) return { objects, bytes };
    cursor = page.cursor;
  }
}

export async function benchStorage(build, { payments = 10_000, seed = 14, retentionDays = 30, batchSize = 100 } = {}) {
  const delivered = [];
  // Webhooks arrive here: each one becomes a queue message, as the edge would enqueue it. While the queue handler runs,
  // the payment driver waits (as in the consumer section), so events/s measures the consumer and its fetch-backs, not
  // this process's other work.
  const emulator = demoSandbox({ onDelivery: (delivery) => delivered.push(delivery) });
  const worker = await startWorker(build, { outbound: (request) => emulator.fetch(request) });
  try {
    const merchantId = "bench-storage";
    const { project, shop, quiet } = await emulator.openMerchant(worker, merchantId);

    const handler = await worker.worker();
    const consumer = { events: 0, invocations: 0, busyMs: 0, retried: 0 };
    let driving = true;
    /** Hands waiting webhooks to the queue handler, 100 a batch; ends once the payments are driven and nothing waits. */
    const consume = async () => {
      for (;;) {
        if (delivered.length < batchSize && driving) {
          await sleep(5);
          continue;
        }
        if (delivered.length === 0) return;
        const batch = delivered.splice(0, batchSize);
        const { ms, retried } = await queueBatch(worker, handler, batch, { pauseWhile: emulator.pauseWhile });
        consumer.busyMs += ms;
        consumer.invocations += 1;
        consumer.events += batch.length;
        consumer.retried += retried;
      }
    };

    const random = seededRandom(seed);
    const scenarios = {};
    const driveStarted = performance.now();
    const consumed = consume();
    try {
      await mapConcurrent(
        Array.from({ length: payments }, (_, index) => index),
        IN_FLIGHT,
        async (index) => {
          const scenario = pickScenario(random, index);
          scenarios[scenario.name] = (scenarios[scenario.name] ?? 0) + 1;
          const payment = await makePayment(shop, scenario, { random, pollMs: 2, timeoutMs: 60_000 });
          await payment.done;
        },
      );
      // Asynchronous steps (APM completion, disputes) and deliveries still on a timer: wait for the project to be quiet.
      for (let i = 0; i < 600 && !(await quiet()); i++) await sleep(50);
    } finally {
      driving = false;
      await consumed;
    }
    const driveMs = performance.now() - driveStarted;

    const truth = (await emulator.control(`${project}/truth`)).body;
    const shard = await worker.d1For(merchantId);
    // The SQLite file of the merchant's shard (the other shards hold only the directory or nothing of this merchant).
    const shardFile = worker.databases.find((database) => database.db === shard)?.file ?? d1File(worker.persist);
    const stored = await shard
      .prepare("SELECT status, count(*) AS n FROM transactions WHERE merchant_id = ? GROUP BY status")
      .bind(merchantId)
      .all();
    const storedCount = stored.results.reduce((sum, row) => sum + row.n, 0);
    const outcomes = await shard
      .prepare("SELECT outcome, count(*) AS n FROM events WHERE merchant_id = ? GROUP BY outcome")
      .bind(merchantId)
      .all();

    const before = perPayment(
      withD1Copy(shardFile, (db) => tableBytes(db)),
      payments,
    );

    // The Cron Trigger RETENTION_DAYS + 1 days later, run after run until the archive has nothing left (at most 200 runs).
    const later = Date.now() + (retentionDays + 1) * DAY_MS;
    let runs = 0;
    let archiveObjects = 0;
    for (; runs < 200; runs++) {
      await handler.scheduled({ scheduledTime: new Date(later + runs * 300_000), cron: "*/5 * * * *" });
      const { n } = await shard.prepare("SELECT count(*) AS n FROM archive_objects WHERE status = 'stored'").first();
      if (n === archiveObjects) break;
      archiveObjects = n;
    }
    const after = perPayment(
      withD1Copy(shardFile, (db) => tableBytes(db, { vacuum: true })),
      payments,
    );
    const r2 = await bucketSize(await worker.mf.getR2Bucket("ARCHIVE"));

    return {
      payments,
      seed,
      scenarios,
      events: truth.events.length,
      eventsPerPayment: truth.events.length / payments,
      storedTransactions: storedCount,
      storedStatuses: Object.fromEntries(stored.results.map((row) => [row.status, row.n])),
      inbox: Object.fromEntries(outcomes.results.map((row) => [row.outcome, row.n])),
      consumer: { ...consumer, eventsPerSecond: consumer.events / (consumer.busyMs / 1000), driveSeconds: round(driveMs / 1000, 1) },
      before,
      retention: { days: retentionDays, cronRuns: runs + 1, archiveObjects },
      after,
      r2: { ...r2, bytesPerPayment: r2.bytes / payments },
      projection: {
        limitBytes: D1_LIMIT_BYTES,
        paymentsPer10GB: Math.floor(D1_LIMIT_BYTES / before.bytesPerPayment),
        paymentsPer10GBArchived: Math.floor(D1_LIMIT_BYTES / after.bytesPerPayment),
      },
      workerLogErrors: worker.logs.errors,
    };
  } finally {
    await worker.dispose();
    emulator.close();
  }
}

/** The section's rows of the bench table: [section, measure, result, target, status]. */
export function storageRows(storage) {
  const bytes = (value) => `${Math.round(value).toLocaleString("en-US")} B`;
  const count = (value) => Math.round(value).toLocaleString("en-US");
  /** One row per table of 10 B a payment or more, the rest (mostly empty tables' first pages) summed in one. */
  const breakdown = (measure) => {
    const shown = measure.tables.filter((entry) => entry.bytesPerPayment >= 10);
    const rest = measure.tables.filter((entry) => entry.bytesPerPayment < 10);
    return [
      ...shown.map((entry) => [
        "Storage",
        `  ${entry.table} (${count(entry.rows)} rows)`,
        `${bytes(entry.bytesPerPayment)} (table ${bytes(entry.tableBytes / storage.payments)} + ${Object.keys(entry.indexes).length} indexes ${bytes(entry.indexBytes / storage.payments)})`,
        "",
        "",
      ]),
      ["Storage", `  ${rest.length} other tables`, bytes(rest.reduce((sum, entry) => sum + entry.bytesPerPayment, 0)), "", ""],
    ];
  };
  return [
    [
      "Storage",
      `D1 per payment, all tables with indexes (${count(storage.payments)} payments, demo mix, ${storage.eventsPerPayment.toFixed(2)} events each)`,
      `${bytes(storage.before.bytesPerPayment)} · ${count(storage.projection.paymentsPer10GB)} payments per 10 GB`,
      "",
      "",
    ],
    ...breakdown(storage.before),
    [
      "Storage",
      `D1 per payment after retention (${storage.retention.days} days; ${count(storage.retention.archiveObjects)} objects, ${storage.retention.cronRuns} cron runs)`,
      `${bytes(storage.after.bytesPerPayment)} · ${count(storage.projection.paymentsPer10GBArchived)} payments per 10 GB`,
      "",
      "",
    ],
    ...breakdown(storage.after),
    ["Storage", "R2 archive per payment (gzip NDJSON)", bytes(storage.r2.bytesPerPayment), "", ""],
    [
      "Storage",
      "consumer, one database, 100 messages per batch, over the whole run",
      `${count(storage.consumer.eventsPerSecond)} events/s`,
      "",
      "",
    ],
  ];
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { payments: { type: "string", default: "10000" }, seed: { type: "string", default: "14" } } });
  const build = buildWorker();
  try {
    const storage = await benchStorage(build, { payments: Number(values.payments), seed: Number(values.seed) });
    const rows = storageRows(storage).map((row) => row.slice(1, 3));
    const width = Math.max(...rows.map(([measure]) => measure.length));
    for (const [measure, result] of rows) process.stdout.write(`${measure.padEnd(width)}  ${result}\n`);
    const rounded = (_key, value) => (typeof value === "number" && !Number.isInteger(value) ? round(value, 2) : value);
    process.stdout.write(`${JSON.stringify(storage, rounded, 2)}\n`);
  } finally {
    build.cleanup();
  }
}
