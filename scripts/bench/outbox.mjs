// Section — outbox (issue 22): the D1 rows the endpoints' outbox (src/transactions/stream.ts) adds to each applied status
// change, taken from D1's own `meta.rows_written` of every statement (index entries included). Two merchants side by
// side in one run, the same demo-mix payments each (same seed): one with no endpoint, one with one endpoint taking `*`.
// Their webhooks go to the bundled worker's queue handler in workerd, 100 a batch, one merchant per batch so each batch's
// rows are that merchant's. Then the second merchant's messages are delivered (its lanes nudged through the endpoint
// queue's handler, the endpoint answering 204) and the rows that delivery writes are counted too.
//   node scripts/bench/outbox.mjs [--payments N]     this section alone (about a minute for 1,000 payments each)
import { parseArgs } from "node:util";
import "./lib/ts-resolve.mjs";
import { demoSandbox, queueBatch } from "./lib/demo-payments.mjs";
import { round } from "./lib/stats.mjs";
import { buildWorker, startWorker } from "./lib/worker.mjs";

const { makePayment, pickScenario, seededRandom } = await import("../stack.mjs");
const { mapConcurrent } = await import("../../src/lib/concurrency.ts");

/** The tables the outbox writes in the apply's D1 batch (stream.ts: changes, messages, streams). */
const OUTBOX_TABLES = ["transaction_changes", "endpoint_messages", "transaction_streams"];
const ENDPOINT_HOST = "orders.bench.example";
const ENDPOINT_QUEUE = "smart-router-endpoint-messages";
const IN_FLIGHT = 32;
/** Lane nudges per endpoint-queue batch (the queue's batch size). */
const NUDGES_PER_BATCH = 10;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Adds one batch's counters (`/__bench/d1`) to a merchant's sums. */
function addCounters(sum, d1) {
  sum.statements += d1.queries + d1.batchStatements;
  sum.rowsWritten += d1.rowsWritten;
  for (const [table, rows] of Object.entries(d1.rowsWrittenByTable)) sum.byTable[table] = (sum.byTable[table] ?? 0) + rows;
}

const emptySum = () => ({ batches: 0, events: 0, statements: 0, rowsWritten: 0, byTable: {} });

/** Runs one merchant's waiting deliveries through the queue handler, the D1 counters reset before and read after. */
async function consumeBatch(worker, handler, emulator, sum, batch) {
  await worker.call("/__bench/d1", { method: "POST" });
  const { retry } = await queueBatch(worker, handler, batch, { pauseWhile: emulator.pauseWhile });
  addCounters(sum, (await worker.call("/__bench/d1")).json);
  sum.batches += 1;
  sum.events += batch.length - retry.length;
  return retry;
}

/** Nudges every lane of the merchant's endpoint until none has a pending message (at most `rounds` passes). */
async function deliverAll(worker, handler, shard, merchantId, rounds = 20) {
  const sum = emptySum();
  for (let pass = 0; pass < rounds; pass++) {
    const { results: lanes } = await shard
      .prepare("SELECT DISTINCT endpoint_id, transaction_id FROM endpoint_messages WHERE merchant_id = ? AND status = 'pending'")
      .bind(merchantId)
      .all();
    if (lanes.length === 0) return { ...sum, passes: pass };
    for (let i = 0; i < lanes.length; i += NUDGES_PER_BATCH) {
      const messages = lanes.slice(i, i + NUDGES_PER_BATCH).map((lane) => ({
        id: crypto.randomUUID().replaceAll("-", ""),
        timestamp: new Date(),
        attempts: 1,
        body: { v: 1, merchant_id: merchantId, endpoint_id: lane.endpoint_id, transaction_id: lane.transaction_id },
      }));
      await worker.call("/__bench/d1", { method: "POST" });
      const result = await handler.queue(ENDPOINT_QUEUE, messages);
      if (result.outcome !== "ok") throw new Error(`endpoint queue handler: ${result.outcome}\n${worker.logs.recent.join("\n")}`);
      addCounters(sum, (await worker.call("/__bench/d1")).json);
      sum.batches += 1;
    }
  }
  throw new Error(`outbox bench: lanes still pending after ${rounds} passes`);
}

/** The figures of one merchant: rows written per applied change, all and by the outbox's tables. */
async function figures(shard, merchantId, sum) {
  const count = async (sql) => (await shard.prepare(sql).bind(merchantId).first()).n;
  // Applied status changes as the records count them (0023): a merchant without an endpoint keeps no change rows.
  const changes = await count("SELECT COALESCE(SUM(status_changes), 0) AS n FROM transactions WHERE merchant_id = ?");
  const messages = await count("SELECT count(*) AS n FROM endpoint_messages WHERE merchant_id = ?");
  const transactions = await count("SELECT count(*) AS n FROM transactions WHERE merchant_id = ?");
  const outbox = Object.fromEntries(OUTBOX_TABLES.map((table) => [table, sum.byTable[table] ?? 0]));
  const outboxRows = Object.values(outbox).reduce((a, b) => a + b, 0);
  return {
    ...sum,
    transactions,
    changes,
    messages,
    rowsWrittenPerEvent: sum.rowsWritten / sum.events,
    rowsWrittenPerChange: sum.rowsWritten / changes,
    outbox,
    outboxRowsPerChange: outboxRows / changes,
    /** Per webhook handled: a million webhooks make this many million rows written. */
    outboxRowsPerEvent: outboxRows / sum.events,
    outboxByTablePerChange: Object.fromEntries(Object.entries(outbox).map(([table, rows]) => [table, rows / changes])),
    outboxShareOfRowsWritten: outboxRows / sum.rowsWritten,
  };
}

export async function benchOutbox(build, { payments = 1000, seed = 22, batchSize = 100 } = {}) {
  const waiting = new Map();
  const emulator = demoSandbox({ onDelivery: (delivery) => waiting.get(delivery.merchantId)?.push(delivery) });
  const endpointRequests = { count: 0 };
  const outbound = (request) => {
    if (new URL(request.url).hostname !== ENDPOINT_HOST) return emulator.fetch(request);
    endpointRequests.count += 1;
    return new Response(null, { status: 204 });
  };
  const worker = await startWorker(build, { counting: true, outbound });
  try {
    const handler = await worker.worker();
    const merchants = [];
    for (const name of ["none", "one"]) {
      const merchantId = `bench-outbox-${name}`;
      waiting.set(merchantId, []);
      merchants.push({ name, merchantId, ...(await emulator.openMerchant(worker, merchantId)), sum: emptySum() });
    }
    const [, subscribed] = merchants;
    const key = await worker.admin(`/admin/merchants/${subscribed.merchantId}/api-keys`, { method: "POST" });
    const created = await worker.call("/v1/endpoints", {
      method: "POST",
      headers: { authorization: `Bearer ${key.api_key.key}` },
      body: { url: `https://${ENDPOINT_HOST}/hooks`, events: ["*"] },
    });
    if (created.status !== 201) throw new Error(`outbox bench: endpoint not created: ${created.status} ${created.text}`);

    let driving = true;
    /** Whichever merchant has a full batch waiting (or anything, once driving ended) goes next; ends when none waits. */
    const consume = async () => {
      for (;;) {
        const ready = merchants.find(({ merchantId }) => waiting.get(merchantId).length >= (driving ? batchSize : 1));
        if (!ready) {
          if (!driving) return;
          await sleep(5);
          continue;
        }
        const queue = waiting.get(ready.merchantId);
        const retry = await consumeBatch(worker, handler, emulator, ready.sum, queue.splice(0, batchSize));
        queue.push(...retry);
      }
    };
    const consumed = consume();
    try {
      // The same payments for both: one seeded sequence of scenarios, each made once per merchant.
      const random = seededRandom(seed);
      const scenarios = Array.from({ length: payments }, (_, index) => pickScenario(random, index));
      await mapConcurrent(
        scenarios.flatMap((scenario, index) => merchants.map((merchant) => ({ scenario, index, merchant }))),
        IN_FLIGHT,
        async ({ scenario, index, merchant }) => {
          const payment = await makePayment(merchant.shop, scenario, { random: seededRandom(seed + index), pollMs: 2, timeoutMs: 60_000 });
          await payment.done;
        },
      );
      for (let i = 0; i < 600 && !(await Promise.all(merchants.map((m) => m.quiet()))).every(Boolean); i++) await sleep(50);
    } finally {
      driving = false;
      await consumed;
    }

    const [none, one] = await Promise.all(merchants.map(async (m) => figures(await worker.d1For(m.merchantId), m.merchantId, m.sum)));
    const delivery = await deliverAll(worker, handler, await worker.d1For(subscribed.merchantId), subscribed.merchantId);
    return {
      payments,
      seed,
      none,
      one,
      extraRowsPerChange: { noEndpoint: none.outboxRowsPerChange, oneEndpoint: one.outboxRowsPerChange },
      perEndpointRowsPerChange: one.outboxRowsPerChange - none.outboxRowsPerChange,
      delivery: {
        ...delivery,
        endpointRequests: endpointRequests.count,
        rowsWrittenPerMessage: delivery.rowsWritten / one.messages,
        rowsWrittenPerChange: delivery.rowsWritten / one.changes,
      },
      workerLogErrors: worker.logs.errors,
    };
  } finally {
    await worker.dispose();
    emulator.close();
  }
}

/** The section's rows of the bench table: [section, measure, result, target, status]. */
export function outboxRows(outbox) {
  const rows = (value) => value.toFixed(2);
  const split = (figures) =>
    Object.entries(figures.outboxByTablePerChange)
      .map(([table, value]) => `${table} ${rows(value)}`)
      .join(" + ");
  return [
    [
      "Outbox",
      `D1 rows written per applied change by the outbox, no endpoint (${outbox.none.changes} changes)`,
      `${rows(outbox.none.outboxRowsPerChange)} (${split(outbox.none)}) of ${rows(outbox.none.rowsWrittenPerChange)} · ${rows(outbox.none.outboxRowsPerEvent)} per webhook`,
      "",
      "",
    ],
    [
      "Outbox",
      `  with one endpoint taking * (${outbox.one.changes} changes, ${outbox.one.messages} messages)`,
      `${rows(outbox.one.outboxRowsPerChange)} (${split(outbox.one)}) of ${rows(outbox.one.rowsWrittenPerChange)} · ${rows(outbox.one.outboxRowsPerEvent)} per webhook`,
      "",
      "",
    ],
    [
      "Outbox",
      "  delivering them (batched settles; the claim's UPDATE … RETURNING reports no meta)",
      `${rows(outbox.delivery.rowsWrittenPerMessage)} per message · ${rows(outbox.delivery.rowsWrittenPerChange)} per change`,
      "",
      "",
    ],
  ];
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { payments: { type: "string", default: "1000" }, seed: { type: "string", default: "22" } } });
  const build = buildWorker();
  try {
    const outbox = await benchOutbox(build, { payments: Number(values.payments), seed: Number(values.seed) });
    const rows = outboxRows(outbox).map((row) => row.slice(1, 3));
    const width = Math.max(...rows.map(([measure]) => measure.length));
    for (const [measure, result] of rows) process.stdout.write(`${measure.padEnd(width)}  ${result}\n`);
    const rounded = (_key, value) => (typeof value === "number" && !Number.isInteger(value) ? round(value, 3) : value);
    process.stdout.write(`${JSON.stringify(outbox, rounded, 2)}\n`);
  } finally {
    build.cleanup();
  }
}
