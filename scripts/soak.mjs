// `npm run soak` (issue 14): a long run of webhooks through the real consumer, with one D1 database and with two.
// Payments of the demo mix (scripts/stack.mjs SCENARIOS) for many merchants are made in the Smart Router emulator in
// this process; every webhook it sends becomes a queue message, and the bundled worker's queue handler in workerd (not
// `wrangler dev`) gets them 100 a batch, merchants interleaved, verifies them by fetch-back and commits them to D1.
// Each D1 database (`DB`, `DB_SHARD_1`, …, migrations applied to each) is then read with SQLite's dbstat: where the
// merchants landed, webhooks and bytes per shard, bytes per payment, and how long 10 GB lasts at a given rate.
// With `--move` (two shards), once half the webhooks are applied, the merchant with the most payments moves to the other
// shard through the admin API, its steps driven through the batches queue's handler while the webhooks keep coming; the
// run then waits for the move to complete and checks every transaction against the emulator, where the merchant's rows
// are, and its fulfilment rows. Messages the worker sends to its webhooks and batches queues (a delivery put back after
// meeting the fence, a move's next step) are handed to the handler when their delay is over.
//   node scripts/soak.mjs [--webhooks 100000] [--shards 1|2|both] [--merchants 20] [--rate 10000] [--seed 14] [--move]
// Prints a table; writes it with the raw figures to bench/results/soak-latest.json, with --move to
// bench/results/soak-move.json (SOAK_OUT overrides either).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import "./bench/lib/ts-resolve.mjs";
import { backgroundBusy, childPids, cpuMs } from "./bench/lib/cpu.mjs";
import { perPayment, tableBytes, withD1Copy } from "./bench/lib/d1-bytes.mjs";
import { demoSandbox, queueBatch } from "./bench/lib/demo-payments.mjs";
import { describeMachine } from "./bench/lib/machine.mjs";
import {
  fencedRetries,
  fulfilmentDifferences,
  moveFigures,
  pickMerchantToMove,
  takeDue,
  truthDifferences,
} from "./bench/lib/soak-move.mjs";
import { round, summarize } from "./bench/lib/stats.mjs";
import { buildWorker, ROOT, startWorker } from "./bench/lib/worker.mjs";

const { makePayment, pickScenario, seededRandom } = await import("./stack.mjs");
const { MOVED_TABLES, ownedRows } = await import("../src/moves/tables.ts");
const { sql } = await import("drizzle-orm");
const { SQLiteSyncDialect } = await import("drizzle-orm/sqlite-core");

/** D1's limit per database (Cloudflare's "10 GB", decimal). */
const D1_LIMIT_BYTES = 10e9;
/** Messages per queue handler call: the webhooks queue's max_batch_size in wrangler.toml. */
const BATCH_SIZE = 100;
/** Payment lifecycles driven at once (each waits on the emulator between its steps), spread over the merchants. */
const IN_FLIGHT = 32;
/** Webhooks waiting for the consumer before the drivers stop making payments: what is held in memory at most (plus the lifecycles in flight). */
const HIGH_WATER = 1_000;
/**
 * Webhooks a payment of the demo mix sends (3.14–3.15 in the storage section): some come long after the payment (dispute
 * steps, APM completion), so the drivers stop once the payments made should bring the run to its count, not when that
 * many have arrived.
 */
const WEBHOOKS_PER_PAYMENT = 3.14;
/** Times a message is handed back after the handler asks to retry it (the webhooks queue's max_retries), then it counts as dead-lettered. */
const MAX_RETRIES = 10;
/** How long the emulator may take to go quiet (asynchronous steps, deliveries on a timer) once the drivers stop. */
const QUIET_TIMEOUT_MS = 60_000;
/**
 * Times one delivery may be put back by the worker itself (a fresh message after a fence, a pacer's wait: no queue
 * retry spent); past it the soak counts the delivery as lost. At the fence's 5 s a wait, 100 is over 8 minutes.
 */
const MAX_RESENDS = 100;
/** The batches queue: its name, max_batch_size and max_retries in wrangler.toml. */
const BATCHES_QUEUE = "smart-router-batches";
const BATCHES_BATCH_SIZE = 10;
const BATCHES_MAX_RETRIES = 10;
/**
 * The bound on the wait for a move to complete, from its POST: the copy, the switch, the 90 s before cleaning
 * (src/moves/moves.ts CLEAN_AFTER_MS, at RETRY_SCHEDULE_SCALE 1) and the cleaning. Past it the run fails.
 */
const MOVE_TIMEOUT_MS = 15 * 60_000;
/** How often the move's job is read while none of its steps is due. */
const MOVE_POLL_MS = 250;

/** workerd processes of earlier runs (already ended), so each run reads its own. */
const previousWorkerd = new Set();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (message) => process.stderr.write(`soak: ${message}\n`);

/** What the worker sent to one of its queues (`WEBHOOKS` or `BATCHES`) since the last call: `[{ body, delaySeconds }]`. */
const sentTo = async (worker, queue) => (await worker.call(`/__bench/sent?queue=${queue}`, { method: "POST" })).json;

/** Payments per merchant on each shard, in shard order. */
const paymentsByShard = (worker) =>
  Promise.all(
    worker.shards.map(
      async (db) => (await db.prepare("SELECT merchant_id, count(*) AS n FROM transactions GROUP BY merchant_id").all()).results,
    ),
  );

/** Starts moving the merchant with the most payments on one shard to the next shard, through the admin API. */
async function startMove(worker) {
  const chosen = pickMerchantToMove(await paymentsByShard(worker));
  if (!chosen) throw new Error("soak --move: no shard holds a payment yet");
  const to = worker.databases[(chosen.shard + 1) % worker.databases.length].binding;
  const { move } = await worker.admin(`/admin/merchants/${chosen.merchantId}/move`, { method: "POST", body: { to } });
  log(`moving ${chosen.merchantId} (${chosen.payments} payments) from ${move.from} to ${move.to}: ${move.id}`);
  return { ...chosen, from: move.from, to: move.to, moveId: move.id, postedAt: new Date().toISOString() };
}

/**
 * The batches queue as the soak drives it: whatever the worker sent there (the move's steps) is handed to the queue
 * handler, 10 a call, once its delay is over; a message the handler asks to retry comes back after the delay it asked for, at
 * most 10 times (then it counts as dead-lettered). Ends when the move is completed or failed; horizon MOVE_TIMEOUT_MS.
 */
async function driveMove(worker, handler, moveId, applied) {
  const lane = { calls: 0, messages: 0, busyMs: 0, retried: 0, deadLettered: 0, status: "copying", timedOut: false, statuses: [] };
  // Each status as the lane first saw it, with the webhooks applied by then: did the traffic go on through the fence?
  const saw = (status) => {
    if (lane.statuses.at(-1)?.status !== status) lane.statuses.push({ status, at: new Date().toISOString(), webhooksApplied: applied() });
  };
  saw("copying");
  let held = [];
  const deadline = Date.now() + MOVE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    for (const { body, delaySeconds } of await sentTo(worker, "BATCHES"))
      held.push({ dueAt: Date.now() + delaySeconds * 1000, delivery: { body } });
    const { due, rest } = takeDue(held, Date.now(), BATCHES_BATCH_SIZE);
    held = rest;
    if (due.length === 0) {
      lane.status = (await worker.admin(`/admin/moves/${moveId}`)).move.status;
      saw(lane.status);
      if (lane.status === "completed" || lane.status === "failed") return lane;
      await sleep(MOVE_POLL_MS);
      continue;
    }
    const { ms, retry } = await queueBatch(
      worker,
      handler,
      due.map((item) => item.delivery),
      { queue: BATCHES_QUEUE },
    );
    lane.calls += 1;
    lane.messages += due.length;
    lane.busyMs += ms;
    saw((await worker.admin(`/admin/moves/${moveId}`)).move.status);
    for (const delivery of retry) {
      delivery.retries = (delivery.retries ?? 0) + 1;
      lane.retried += 1;
      if (delivery.retries <= BATCHES_MAX_RETRIES) held.push({ dueAt: Date.now() + delivery.retryDelaySeconds * 1000, delivery });
      else lane.deadLettered += 1;
    }
  }
  lane.timedOut = true;
  return lane;
}

const dialect = new SQLiteSyncDialect();

/** A merchant's rows in each table a move carries (src/moves/tables.ts), on one D1 database. */
async function movedRows(db, merchantId) {
  const counts = {};
  for (const table of MOVED_TABLES) {
    const query = dialect.sqlToQuery(
      sql`SELECT count(*) AS n FROM ${sql.identifier(table.name)} AS x WHERE ${ownedRows(table, merchantId)}`,
    );
    counts[table.name] = (
      await db
        .prepare(query.sql)
        .bind(...query.params)
        .first()
    ).n;
  }
  return counts;
}

/** Every transaction of a merchant through the status API (`GET /v1/transactions`, 100 a page, to the last page). */
async function statusApiTransactions(worker, apiKey) {
  const all = [];
  // Ends at the page without a next cursor; horizon: 10,000 pages (a million transactions), more is a broken cursor.
  for (let page = 0, cursor = null; page < 10_000; page++) {
    const query = `/v1/transactions?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const { status, json, text } = await worker.call(query, { headers: { authorization: `Bearer ${apiKey}` } });
    if (status !== 200) throw new Error(`GET ${query}: ${status} ${text.slice(0, 300)}`);
    all.push(...json.transactions);
    cursor = json.next_cursor;
    if (!cursor) return all;
  }
  throw new Error("GET /v1/transactions: more than 10,000 pages");
}

/**
 * After the run: each merchant's transactions on its shard (the directory's) against the emulator's truth (status and
 * every amount), its fulfilment rows against its captured payments, and, for a moved merchant, the status API against
 * the truth and its rows per table on the source and the target.
 */
async function checkAgainstTruth(worker, opened, moved) {
  const check = {
    merchants: opened.length,
    transactions: 0,
    differences: 0,
    examples: [],
    fulfilment: { rows: 0, missing: 0, extra: 0, duplicated: 0 },
  };
  for (const merchant of opened) {
    const truth = await merchant.truth();
    const db = await worker.d1For(merchant.merchantId);
    const stored = (await db.prepare("SELECT * FROM transactions WHERE merchant_id = ?").bind(merchant.merchantId).all()).results;
    const differences = truthDifferences(stored, truth);
    check.transactions += truth.length;
    check.differences += differences.length;
    check.examples.push(...differences.slice(0, 5 - check.examples.length).map((d) => ({ merchant: merchant.merchantId, ...d })));
    const rows = (
      await db
        .prepare("SELECT transaction_id, count(*) AS n FROM fulfillments WHERE merchant_id = ? GROUP BY transaction_id")
        .bind(merchant.merchantId)
        .all()
    ).results;
    const fulfilment = fulfilmentDifferences(rows, truth);
    check.fulfilment.rows += rows.length;
    for (const key of ["missing", "extra", "duplicated"]) check.fulfilment[key] += fulfilment[key].length;
    if (merchant.merchantId === moved?.merchantId) {
      const listed = await statusApiTransactions(worker, merchant.apiKey);
      const fields = ["status", "currency", "amount", "authorized_amount", "captured_amount", "refunded_amount", "available_amount"];
      const apiDifferences = truthDifferences(listed, truth, fields);
      const index = (binding) => worker.databases.findIndex((database) => database.binding === binding);
      moved.statusApi = { transactions: listed.length, differences: apiDifferences.length, examples: apiDifferences.slice(0, 5) };
      moved.rowsOnSource = await movedRows(worker.shards[index(moved.from)], moved.merchantId);
      moved.rowsOnTarget = await movedRows(worker.shards[index(moved.to)], moved.merchantId);
      moved.directoryShard = (
        await worker.d1.prepare("SELECT shard FROM merchant_shards WHERE merchant_id = ?").bind(moved.merchantId).first()
      ).shard;
    }
  }
  return check;
}

/**
 * One soak run with `shards` D1 databases: drives payments until `webhooks` webhooks have been sent, consumes them all,
 * then measures every database.
 */
async function soak(build, { shards, webhooks, merchants, seed, move }) {
  const started = performance.now();
  /** Webhooks sent and not yet handed to the consumer, oldest first. */
  const waiting = [];
  let sent = 0;
  const emulator = demoSandbox({
    onDelivery: (delivery) => {
      waiting.push(delivery);
      sent += 1;
    },
  });
  /** Deliveries the worker put back because their commit met the move's fence (its `webhooks.batch_failed` lines). */
  let fencedByLog = 0;
  /** The worker's warnings and errors about the move (a step that failed and was retried, a move that failed), the first 10. */
  const moveLog = [];
  const worker = await startWorker(build, {
    d1Shards: shards,
    capturing: true,
    outbound: (request) => emulator.fetch(request),
    onLog: (level, message) => {
      fencedByLog += fencedRetries(message);
      if ((level === "warn" || level === "error") && message.includes('"message":"move.') && moveLog.length < 10)
        moveLog.push(message.slice(0, 500));
    },
  });
  try {
    const opened = [];
    for (let i = 0; i < merchants; i++) opened.push(await emulator.openMerchant(worker, `soak-${String(i).padStart(2, "0")}`));
    const handler = await worker.worker();
    // CPU of workerd (the worker, D1, the rate-limiting Durable Object) inside queue() calls: unlike events/s, it does
    // not count the time other tenants of the machine take.
    const workerd = childPids(process.pid, "workerd").filter((pid) => !previousWorkerd.has(pid));
    for (const pid of workerd) previousWorkerd.add(pid);

    const consumer = {
      webhooks: 0,
      batches: 0,
      busyMs: 0,
      workerdCpuMs: 0,
      retried: 0,
      deadLettered: 0,
      /** Deliveries the worker put back itself as fresh messages (after a fence, a pacer's wait), and those with the fence's 5 s. */
      resent: 0,
      resentAfterFence: 0,
      /** For each delivery put back: ms from the first time it was put back to the end of the batch that applied it. */
      putBackMs: [],
      lost: 0,
      /** Other messages the worker sent its webhooks queue (re-checks, wake-ups), handed over but not counted as webhooks. */
      extraMessages: 0,
      merchantsPerBatch: 0,
      batchMs: [],
      /** Each tenth of the run on its own: does the consumer slow down as the databases grow? */
      tenths: [],
    };
    let tenthFrom = { webhooks: 0, busyMs: 0, workerdCpuMs: 0 };
    const closeTenth = () => {
      const count = consumer.webhooks - tenthFrom.webhooks;
      if (count === 0) return;
      consumer.tenths.push({
        upTo: consumer.webhooks,
        eventsPerSecond: count / ((consumer.busyMs - tenthFrom.busyMs) / 1000),
        workerdCpuUsPerWebhook: ((consumer.workerdCpuMs - tenthFrom.workerdCpuMs) * 1000) / count,
      });
      tenthFrom = { webhooks: consumer.webhooks, busyMs: consumer.busyMs, workerdCpuMs: consumer.workerdCpuMs };
    };
    const consumedBy = new Map(opened.map(({ merchantId }) => [merchantId, 0]));
    let driving = true;
    /** Messages the worker sent its webhooks queue, until their delay is over: `{ dueAt, delivery }`. */
    let held = [];
    /** The move (--move): started once half the webhooks are applied; its batches-queue lane runs beside the consumer. */
    let moving = null;
    /** @type {Promise<object> | null} */
    let moveLane = null;
    /** Takes what the worker sent its webhooks queue during a batch: the batch's own deliveries put back, or other messages. */
    const takeSent = async (batch) => {
      const byDeliveryId = new Map(batch.map((delivery) => [delivery.body?.delivery_id, delivery]));
      const putBack = new Set();
      for (const { body, delaySeconds } of await sentTo(worker, "WEBHOOKS")) {
        const own = body.not_found_at === undefined ? byDeliveryId.get(body.delivery_id) : undefined;
        const delivery = own ?? { merchantId: body.merchant_id, extra: true };
        delivery.body = body;
        if (own) {
          putBack.add(own);
          own.putBackAt ??= performance.now();
          own.resends = (own.resends ?? 0) + 1;
          consumer.resent += 1;
          if (delaySeconds === 5) consumer.resentAfterFence += 1;
          if (own.resends > MAX_RESENDS) {
            consumer.lost += 1;
            continue;
          }
        }
        held.push({ dueAt: Date.now() + delaySeconds * 1000, delivery });
      }
      return putBack;
    };
    /** Tenths of the run reported so far (the last one, with any webhooks past the count, closes when the run ends). */
    let tenthsDone = 0;
    /** Hands waiting webhooks to the queue handler, 100 a batch; ends once the drivers are done and nothing waits. */
    const consume = async () => {
      for (;;) {
        const { due, rest } = takeDue(held, Date.now());
        held = rest;
        waiting.push(...due.map((item) => item.delivery));
        if (waiting.length < BATCH_SIZE && (driving || (waiting.length === 0 && held.length > 0))) {
          await sleep(5);
          continue;
        }
        if (waiting.length === 0) {
          closeTenth();
          return;
        }
        const batch = waiting.splice(0, BATCH_SIZE);
        const cpuBefore = cpuMs(workerd);
        const { ms, retried, retry } = await queueBatch(worker, handler, batch, { pauseWhile: emulator.pauseWhile });
        consumer.workerdCpuMs += cpuMs(workerd) - cpuBefore;
        const putBack = await takeSent(batch);
        // A message the handler asks to retry comes back after the delay it asked for, as the queue would redeliver it, at
        // most MAX_RETRIES times.
        for (const delivery of retry) {
          delivery.retries = (delivery.retries ?? 0) + 1;
          if (delivery.retries <= MAX_RETRIES) held.push({ dueAt: Date.now() + delivery.retryDelaySeconds * 1000, delivery });
          else consumer.deadLettered += 1;
        }
        consumer.busyMs += ms;
        consumer.batchMs.push(ms);
        consumer.batches += 1;
        consumer.retried += retried;
        consumer.merchantsPerBatch += new Set(batch.map((delivery) => delivery.merchantId)).size;
        const again = new Set(retry);
        for (const delivery of batch) {
          if (again.has(delivery) || putBack.has(delivery)) continue;
          if (delivery.extra) {
            consumer.extraMessages += 1;
            continue;
          }
          if (delivery.putBackAt !== undefined) consumer.putBackMs.push(performance.now() - delivery.putBackAt);
          consumer.webhooks += 1;
          consumedBy.set(delivery.merchantId, (consumedBy.get(delivery.merchantId) ?? 0) + 1);
        }
        if (tenthsDone < 10 && consumer.webhooks >= ((tenthsDone + 1) / 10) * webhooks) {
          log(
            `${shards} shard${shards > 1 ? "s" : ""}: ${consumer.webhooks.toLocaleString("en-US")} webhooks applied, ${Math.round(consumer.webhooks / (consumer.busyMs / 1000))} events/s so far`,
          );
          tenthsDone += 1;
          if (tenthsDone < 10) closeTenth();
        }
        if (move && !moveLane && consumer.webhooks >= webhooks / 2) {
          const applied = () => consumer.webhooks;
          // Settled by `await moveLane` below; the catch keeps a failure from being an unhandled rejection meanwhile.
          moveLane = (async () => {
            moving = { ...(await startMove(worker)), webhooksAppliedAtStart: applied() };
            moving.lane = await driveMove(worker, handler, moving.moveId, applied);
            return moving;
          })();
          moveLane.catch(() => {});
        }
      }
    };

    // Payments on demand until the run should reach its count of webhooks, payment i for merchant i mod M: no list of
    // them is kept, and the drivers wait while the consumer is behind by HIGH_WATER webhooks, so memory stays bounded
    // however long the run (the emulator itself keeps every payment it made: the worker's fetch-backs read them).
    const random = seededRandom(seed);
    const scenarios = {};
    let payments = 0;
    const drive = async () => {
      while (sent < webhooks && payments * WEBHOOKS_PER_PAYMENT < webhooks) {
        if (waiting.length >= HIGH_WATER) {
          await sleep(5);
          continue;
        }
        const index = payments++;
        const scenario = pickScenario(random, index);
        scenarios[scenario.name] = (scenarios[scenario.name] ?? 0) + 1;
        const payment = await makePayment(opened[index % merchants].shop, scenario, { random, pollMs: 2, timeoutMs: 60_000 });
        await payment.done;
      }
    };
    const consumed = consume();
    let quiet = false;
    try {
      await Promise.all(Array.from({ length: IN_FLIGHT }, drive));
      // Asynchronous steps (APM completion, disputes) and deliveries still on a timer: wait for every project to be quiet.
      const deadline = Date.now() + QUIET_TIMEOUT_MS;
      while (!quiet && Date.now() < deadline) {
        quiet = (await Promise.all(opened.map((merchant) => merchant.quiet()))).every(Boolean);
        if (!quiet) await sleep(50);
      }
    } finally {
      driving = false;
      await consumed;
    }
    let moved = null;
    if (move) {
      if (!moveLane) throw new Error("soak --move: the run ended before half its webhooks were applied; no move was started");
      // The move may still be cleaning (90 s after its switch): the lane's own horizon, MOVE_TIMEOUT_MS, bounds this wait.
      moved = await moveLane;
      log(`move ${moved.moveId}: ${moved.lane.status}${moved.lane.timedOut ? " (timed out)" : ""}`);
      const job = await worker.d1.prepare("SELECT * FROM merchant_moves WHERE id = ?").bind(moved.moveId).first();
      moved.job = job;
      moved.figures = moveFigures(job);
      moved.webhooksRetriedByFence = fencedByLog;
      moved.log = moveLog;
      moved.webhooksResentAfterFenceWait = consumer.resentAfterFence;
      moved.marks = (
        await Promise.all(
          worker.shards.map(async (db, shard) => ({
            shard,
            marks: (
              await db.prepare("SELECT state FROM move_marks WHERE merchant_id = ?").bind(moved.merchantId).all()
            ).results.map((r) => r.state),
            changesLeft: (
              await db.prepare("SELECT count(*) AS n FROM move_changes WHERE merchant_id = ?").bind(moved.merchantId).first()
            ).n,
          })),
        )
      ).filter((entry) => entry.marks.length > 0 || entry.changesLeft > 0);
    }
    const wallMs = performance.now() - started;
    const truth = await checkAgainstTruth(worker, opened, moved);

    // Each database, from its SQLite file: bytes per table and where the merchants' payments are.
    const databases = worker.databases.map(({ binding, file }, shard) => {
      const read = withD1Copy(file, (db) => ({
        measure: tableBytes(db),
        byMerchant: db.prepare("SELECT merchant_id, count(*) AS n FROM transactions GROUP BY merchant_id").all(),
        inbox: db.prepare("SELECT count(*) AS n FROM events").get().n,
      }));
      return { shard, binding, ...read };
    });
    /** A merchant's shard: the database holding its payments (the most of them, should a merchant ever be split). */
    const home = new Map();
    for (const { shard, byMerchant } of databases) {
      for (const { merchant_id: merchantId, n } of byMerchant) {
        if (!home.has(merchantId) || home.get(merchantId).n < n) home.set(merchantId, { shard, n });
      }
    }
    const consumerSeconds = consumer.busyMs / 1000;
    const stored = databases.reduce((sum, database) => sum + database.byMerchant.reduce((s, row) => s + row.n, 0), 0);
    const perShard = databases.map(({ shard, binding, measure, byMerchant, inbox }) => {
      const placed = [...home].filter(([, at]) => at.shard === shard).map(([merchantId]) => merchantId);
      const shardPayments = byMerchant.reduce((sum, row) => sum + row.n, 0);
      const shardWebhooks = placed.reduce((sum, merchantId) => sum + (consumedBy.get(merchantId) ?? 0), 0);
      const bytes = perPayment(measure, shardPayments);
      return {
        shard,
        binding,
        merchants: placed.length,
        merchantIds: placed,
        payments: shardPayments,
        webhooks: shardWebhooks,
        inboxRows: inbox,
        eventsPerSecond: shardWebhooks / consumerSeconds,
        bytes: bytes.bytes,
        fileBytes: bytes.fileBytes,
        bytesPerPayment: bytes.bytesPerPayment,
        tables: bytes.tables.map(({ table, rows, bytes: tableTotal, indexBytes, bytesPerPayment }) => ({
          table,
          rows,
          bytes: tableTotal,
          indexBytes,
          bytesPerPayment,
        })),
      };
    });
    const bytes = perShard.reduce((sum, entry) => sum + entry.bytes, 0);
    return {
      shards,
      merchants,
      payments,
      storedTransactions: stored,
      scenarios,
      webhooksSent: sent,
      webhooksApplied: consumer.webhooks,
      eventsPerPayment: sent / payments,
      quiet,
      consumer: {
        batches: consumer.batches,
        seconds: consumerSeconds,
        eventsPerSecond: consumer.webhooks / consumerSeconds,
        workerdCpuMs: consumer.workerdCpuMs,
        workerdCpuUsPerWebhook: (consumer.workerdCpuMs * 1000) / consumer.webhooks,
        retried: consumer.retried,
        deadLettered: consumer.deadLettered,
        resent: consumer.resent,
        putBackMs: summarize(consumer.putBackMs),
        lost: consumer.lost,
        extraMessages: consumer.extraMessages,
        merchantsPerBatch: consumer.merchantsPerBatch / consumer.batches,
        batchMs: summarize(consumer.batchMs),
        tenths: consumer.tenths,
      },
      perShard,
      bytes,
      bytesPerPayment: bytes / stored,
      wallSeconds: wallMs / 1000,
      truth,
      move: moved,
      workerLogErrors: worker.logs.errors,
      workerLogWarnings: worker.logs.warnings,
    };
  } finally {
    await worker.dispose();
    emulator.close();
  }
}

/**
 * What 10 GB a shard holds at the run's bytes per payment (each shard's own; for a shard left empty, that of the shards
 * that hold payments), and
 * how many days until it is full at `rate` payments a day split as this run split them (null: it gets none).
 */
function projection(run, rate) {
  const loaded = run.perShard.filter((entry) => entry.payments > 0);
  const loadedBytesPerPayment = loaded.reduce((sum, entry) => sum + entry.bytes, 0) / run.storedTransactions;
  const shards = run.perShard.map((entry) => {
    const bytesPerPayment = entry.bytesPerPayment ?? loadedBytesPerPayment;
    const capacity = Math.floor(D1_LIMIT_BYTES / bytesPerPayment);
    const share = entry.payments / run.storedTransactions;
    return { shard: entry.shard, share, capacityPayments: capacity, daysAtRate: share > 0 ? capacity / (rate * share) : null };
  });
  const capacity = shards.reduce((sum, entry) => sum + entry.capacityPayments, 0);
  const days = shards.map((entry) => entry.daysAtRate).filter((d) => d !== null);
  return {
    ratePerDay: rate,
    limitBytesPerShard: D1_LIMIT_BYTES,
    shards,
    capacityPayments: capacity,
    /** Days until the first shard is full, with this run's split of the merchants. */
    daysUntilFirstFull: Math.min(...days),
    /** Days with the payments spread evenly over the shards. */
    daysEvenSplit: capacity / rate,
  };
}

const { values } = parseArgs({
  options: {
    webhooks: { type: "string", default: "100000" },
    shards: { type: "string", default: "both" },
    merchants: { type: "string", default: "20" },
    rate: { type: "string", default: "10000" },
    seed: { type: "string", default: "14" },
    move: { type: "boolean", default: false },
  },
});
const settings = {
  webhooks: Number(values.webhooks),
  merchants: Number(values.merchants),
  rate: Number(values.rate),
  seed: Number(values.seed),
  shardCounts: values.shards === "both" ? [1, 2] : [Number(values.shards)],
  move: values.move,
  batchSize: BATCH_SIZE,
  inFlight: IN_FLIGHT,
  highWater: HIGH_WATER,
};
for (const [name, value] of Object.entries({ webhooks: settings.webhooks, merchants: settings.merchants, rate: settings.rate })) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got ${values[name]}`);
}
if (!settings.shardCounts.every((n) => n === 1 || n === 2)) throw new Error(`--shards must be 1, 2 or both, got ${values.shards}`);
if (settings.move && values.shards !== "2")
  throw new Error(`--move moves a merchant between two shards: give --shards 2, got ${values.shards}`);
const outFile = path.resolve(
  ROOT,
  process.env.SOAK_OUT ?? (settings.move ? "bench/results/soak-move.json" : "bench/results/soak-latest.json"),
);

const machine = describeMachine();

const started = performance.now();
// The bundle serves the console's built assets (wrangler.toml [assets]): build them first where a fresh clone has none.
if (!existsSync(path.join(ROOT, "dist/assets"))) {
  const assets = spawnSync(process.execPath, [path.join(ROOT, "scripts/build-console.mjs")], {
    cwd: ROOT,
    stdio: "inherit",
    timeout: 120_000,
  });
  if (assets.status !== 0) throw new Error(`scripts/build-console.mjs failed (${assets.status})`);
}
log("building the worker (wrangler deploy --dry-run)");
const build = buildWorker();
const runs = [];
try {
  for (const shards of settings.shardCounts) {
    log(`${shards} shard${shards > 1 ? "s" : ""}: ${settings.webhooks.toLocaleString("en-US")} webhooks, ${settings.merchants} merchants`);
    const busy = await backgroundBusy();
    const run = await soak(build, {
      shards,
      webhooks: settings.webhooks,
      merchants: settings.merchants,
      seed: settings.seed,
      move: settings.move,
    });
    run.projection = projection(run, settings.rate);
    run.backgroundCpuBusyBefore = busy;
    runs.push(run);
  }
} finally {
  build.cleanup();
}
const wallMs = performance.now() - started;
machine.loadAverageAtEnd = os.loadavg().map((v) => round(v, 2));
machine.maxRssMiB = round(process.resourceUsage().maxRSS / 1024, 0);

// ---- the table ----
const num = (value, digits = 0) =>
  value === null || value === undefined || !Number.isFinite(value)
    ? "–"
    : value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const megabytes = (value) => `${num(value / 1e6, 1)} MB`;
const header = [
  "shards",
  "database",
  "merchants",
  "payments",
  "webhooks",
  "events/s",
  "D1 bytes",
  "per payment",
  "10 GB holds",
  "days to full",
];
const rows = [];
for (const run of runs) {
  const { projection: p } = run;
  rows.push([
    String(run.shards),
    "all",
    num(run.merchants),
    num(run.storedTransactions),
    num(run.webhooksApplied),
    num(run.consumer.eventsPerSecond),
    megabytes(run.bytes),
    `${num(run.bytesPerPayment)} B`,
    `${num(p.capacityPayments)} payments`,
    `${num(p.daysUntilFirstFull)} d`,
  ]);
  for (const entry of run.perShard) {
    const at = p.shards[entry.shard];
    rows.push([
      "",
      `${entry.shard} ${entry.binding}`,
      num(entry.merchants),
      num(entry.payments),
      num(entry.webhooks),
      num(entry.eventsPerSecond),
      megabytes(entry.bytes),
      entry.bytesPerPayment === null ? "–" : `${num(entry.bytesPerPayment)} B`,
      `${num(at.capacityPayments)} payments`,
      at.daysAtRate === null ? "– (no load)" : `${num(at.daysAtRate)} d`,
    ]);
  }
}
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) =>
  cells
    .map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
    .join("  ")
    .trimEnd();
const date = new Date().toISOString();
const printed = [
  `Smart Router Edge — npm run soak — ${date}`,
  `machine: ${machine.nproc} × ${machine.cpu}, ${machine.memoryGiB} GiB, ${machine.os}; Node ${machine.node}, workerd ${machine.workerd}`,
  `${num(settings.webhooks)} webhooks a run (demo mix), ${settings.merchants} merchants interleaved, queue batches of ${BATCH_SIZE}; days at ${num(settings.rate)} payments/day`,
  "",
  line(header),
  line(widths.map((w) => "-".repeat(w))),
  ...rows.map(line),
  "",
];
for (const run of runs) {
  const empty = run.perShard.filter((entry) => entry.merchants === 0);
  printed.push(
    `${run.shards} shard${run.shards > 1 ? "s" : ""}: ${num(run.consumer.seconds, 1)} s of consumer time (workerd CPU ${num(run.consumer.workerdCpuUsPerWebhook)} µs a webhook) in ${num(run.consumer.batches)} batches (p50 ${num(run.consumer.batchMs.p50)} ms, p99 ${num(run.consumer.batchMs.p99)} ms, ${num(run.consumer.merchantsPerBatch, 1)} merchants a batch), ${num(run.wallSeconds)} s wall; ${num(run.eventsPerPayment, 2)} webhooks a payment; ${num(run.consumer.retried)} retried, ${num(run.consumer.deadLettered)} dead-lettered; ${run.workerLogErrors.length} worker errors${run.quiet ? "" : "; WARNING: the emulator never went quiet"}`,
  );
  printed.push(
    `  by tenth of the run: ${run.consumer.tenths.map((t) => num(t.eventsPerSecond)).join(" · ")} events/s; workerd ${run.consumer.tenths.map((t) => num(t.workerdCpuUsPerWebhook)).join(" · ")} µs a webhook`,
  );
  if (run.webhooksApplied !== run.perShard.reduce((sum, entry) => sum + entry.inboxRows, 0)) {
    printed.push(`  note: inbox rows (${num(run.perShard.reduce((sum, entry) => sum + entry.inboxRows, 0))}) differ from webhooks applied`);
  }
  if (run.storedTransactions !== run.payments) {
    printed.push(`  note: ${num(run.payments)} payments made, ${num(run.storedTransactions)} stored`);
  }
  for (const entry of empty) {
    printed.push(
      `  note: ${entry.binding} holds no merchant: the worker placed all ${run.merchants} elsewhere (every one on DB before the shards code)`,
    );
  }
  printed.push(...truthLines(run));
  if (run.move) printed.push(...moveLines(run.move, run.consumer));
}
/** The run's check against the emulator's truth, in a line or two. */
function truthLines({ truth, consumer }) {
  const f = truth.fulfilment;
  const lines = [
    `  truth: ${num(truth.transactions)} transactions of ${truth.merchants} merchants against the emulator (status and amounts): ${truth.differences === 0 ? "all equal" : `${num(truth.differences)} DIFFERENCES`}; fulfilment rows ${num(f.rows)} (${f.missing} captured without one, ${f.extra} not captured, ${f.duplicated} twice); ${num(consumer.resent)} deliveries put back by the worker, ${num(consumer.lost)} lost past ${MAX_RESENDS}`,
  ];
  for (const example of truth.examples) lines.push(`    ${JSON.stringify(example)}`);
  return lines;
}

/** What the move did and took, and where the moved merchant's rows are afterwards. */
function moveLines(move, consumer) {
  const f = move.figures;
  const sum = (counts) => Object.values(counts ?? {}).reduce((total, n) => total + n, 0);
  const left = Object.entries(move.rowsOnSource ?? {}).filter(([, n]) => n > 0);
  const lines = [
    `  move ${move.moveId}: ${move.merchantId} (${num(move.payments)} payments at the start) ${move.from} → ${move.to}, posted after ${num(move.webhooksAppliedAtStart)} webhooks applied; status ${f.status}${move.lane.timedOut ? " (TIMED OUT)" : ""}`,
    `    move ${num(f.moveSeconds, 1)} s (to the switch ${num(f.toSwitchSeconds, 1)} s; cleaning ${num(f.cleaningSeconds, 1)} s, 90 s of it the wait before cleaning); copying ${num(f.copySeconds, 1)} s, ${num(f.rowsCopied)} rows copied, ${num(f.rowsPerSecond)} rows/s; writes fenced ${num(f.fenceSeconds * 1000)} ms`,
    `    webhooks put back by the fence: ${num(move.webhooksRetriedByFence)} (worker log), ${num(move.webhooksResentAfterFenceWait)} re-sent with the fence's 5 s, applied ${num(consumer.putBackMs.p50 / 1000, 1)} s (p50) / ${num(consumer.putBackMs.max / 1000, 1)} s (max) after being put back; move steps ${num(move.lane.messages)} in ${num(move.lane.calls)} handler calls (${num(move.lane.busyMs / 1000, 1)} s), ${move.lane.retried} retried, ${move.lane.deadLettered} dead-lettered`,
    `    while it moved: ${move.lane.statuses.map((s) => `${s.status} at ${num(s.webhooksApplied)} webhooks`).join(" → ")}`,
    `    afterwards: directory names shard ${move.directoryShard}; rows on ${move.to} ${num(sum(move.rowsOnTarget))}, on ${move.from} ${num(sum(move.rowsOnSource))}${left.length > 0 ? ` (LEFT: ${left.map(([t, n]) => `${t} ${n}`).join(", ")})` : ""}; status API ${num(move.statusApi?.transactions)} transactions, ${move.statusApi?.differences === 0 ? "all equal to the emulator" : `${move.statusApi?.differences} DIFFERENCES`}; source marks ${JSON.stringify(move.marks)}`,
  ];
  for (const example of move.statusApi?.examples ?? []) lines.push(`    status API: ${JSON.stringify(example)}`);
  for (const entry of move.log) lines.push(`    worker: ${entry}`);
  return lines;
}

const busy = runs.map(
  (run) =>
    `${run.shards} shard${run.shards > 1 ? "s" : ""} ${run.backgroundCpuBusyBefore === null ? "?" : `${Math.round(run.backgroundCpuBusyBefore * 100)}%`}`,
);
printed.push(`other load on the machine just before each run (CPU busy): ${busy.join(", ")}`);
if (runs.some((run) => run.backgroundCpuBusyBefore > 0.25)) {
  printed.push(
    "warning: other processes kept the CPU busy; events/s are pessimistic (workerd CPU a webhook is steadier) — rerun on a quiet machine.",
  );
}
if (runs.length === 2) {
  printed.push(`events/s, 2 shards / 1 shard: ${num(runs[1].consumer.eventsPerSecond / runs[0].consumer.eventsPerSecond, 2)}×`);
}
printed.push(`wall time ${num(wallMs / 1000)} s; raw figures in ${path.relative(ROOT, outFile)}`);
process.stdout.write(`${printed.join("\n")}\n`);

const method =
  "scripts/soak.mjs. The worker is the `wrangler deploy --dry-run` bundle in workerd through Miniflare's API (scripts/bench/lib/worker.mjs), with N D1 databases bound (`DB`, `DB_SHARD_1`, …), the migrations applied to each. Merchants soak-00 … are created through the admin API (the worker places each on a shard), each with its own project in the Smart Router emulator (in this process, time scale 0.001, unlimited rates). 32 lifecycles at once make payments of scripts/stack.mjs's demo mix (every lifecycle once first, then by weight, seeded), payment i for merchant i mod M, until --webhooks webhooks have been sent or the payments made should bring that many at 3.14 a payment (the later ones, dispute steps and APM completions, still to come); payments already under way finish, and the run waits for every project to be quiet. Each webhook becomes a queue message (the edge's body) handed to the bundle's queue handler with getWorker().queue(), 100 a batch in arrival order, so a batch mixes merchants; messages the handler asks to retry are handed back later. The drivers pause while a batch is in the handler and while 1,000 webhooks wait. events/s = webhooks applied / seconds inside queue() calls; per shard = the webhooks of the merchants it holds over the same seconds (the shards share the calls). workerd CPU a webhook = user+system time of the run's workerd process (/proc, 10 ms ticks) inside queue() calls / webhooks applied. Bytes: SQLite dbstat (node:sqlite) over a copy of each database's SQLite file with its WAL, SUM(pgsize) of our tables with their indexes, nothing archived (no retention run); per payment = over the transactions stored. 10 GB holds = 10^10 / bytes per payment (a shard with no payments: that of the shards with payments); days to full = that / (rate × the shard's share of this run's payments); for all shards, the first shard to fill. The worker's entry records what it sends its webhooks and batches queues (scripts/bench/lib/worker.mjs CAPTURING_ENTRY); a delivery it puts back as a fresh message (a commit that met a moving merchant's fence waits 5 s) is handed over again once its delay is over, and counted once when applied. Truth: after the run, every merchant's transactions on the shard the directory names, against the emulator's (`/_sandbox/projects/{id}/truth`): status, currency and every amount, as strings; fulfilment rows against the payments the emulator captured. --move: once half the webhooks are applied, the merchant with the most payments on one shard is moved to the other with `POST /admin/merchants/{id}/move`; the move's steps (what the worker sends its batches queue) go to the handler 10 a call once due, beside the webhook batches (not paused for them); the run waits for `completed` (at most 15 minutes), then the job row `merchant_moves` gives the times: move = started_at → finished_at, copying = started_at → fence_started_at (the catch-up of the change log included), rows/s = rows_copied / copying, fenced = fence_started_at → fence_ended_at. Deliveries put back by the fence = the `messages` of the worker's `webhooks.batch_failed` log lines that name merchant_fenced. Then the moved merchant's rows in each table of src/moves/tables.ts are counted on both shards, and its status API list is compared with the emulator.";

mkdirSync(path.dirname(outFile), { recursive: true });
writeFileSync(
  outFile,
  `${JSON.stringify(
    {
      date,
      machine,
      wallSeconds: round(wallMs / 1000, 1),
      settings,
      table: rows.map((cells) => Object.fromEntries(header.map((h, i) => [h, cells[i]]))),
      method,
      runs,
    },
    (_key, value) => (typeof value === "number" && !Number.isInteger(value) ? round(value, 4) : value),
    2,
  )}\n`,
);
// bench/** is covered by the repository's formatter: leave the file formatted the way `npm run lint` expects.
spawnSync(path.join(ROOT, "node_modules/.bin/biome"), ["format", "--write", outFile], { cwd: ROOT, stdio: "ignore", timeout: 30_000 });
