// Section 2 — consumer: the real queue handler of the bundled worker in workerd (fetch-back through the rate-limiting
// Durable Object to the emulator, state machine, D1 writes), one message per queue batch versus 100 per batch.
import { randomBytes, randomUUID } from "node:crypto";
import { startEmulator, UNLIMITED } from "./lib/emulator.mjs";
import { startWorker } from "./lib/worker.mjs";

const QUEUE = "smart-router-webhooks";

export async function benchConsumer(build, { oneByOneEvents, batchedEvents, batchSize = 100 }) {
  const emulator = startEmulator();
  const worker = await startWorker(build, { counting: true, outbound: (request) => emulator.fetch(request) });
  try {
    const handler = await worker.worker();
    const d1Counters = async (reset = false) => (await worker.call("/__bench/d1", { method: reset ? "POST" : "GET" })).json;

    async function run(label, totalEvents, perBatch) {
      const merchantId = `bench-${label}`;
      const projectId = `proj_bench${label.replaceAll("-", "")}`;
      const secretKey = `sk_${randomBytes(16).toString("hex")}`;
      await emulator.createProject(projectId, secretKey);
      await worker.createMerchant(merchantId, projectId, secretKey);
      await worker.admin(`/admin/merchants/${merchantId}`, {
        method: "PATCH",
        body: { rate_limits: { primary_rpm: UNLIMITED, events_rpm: UNLIMITED, sandbox_rpm: UNLIMITED } },
      });

      const backlog = [];
      let payments = 0;
      let processed = 0;
      let busyMs = 0;
      let acked = 0;
      let retried = 0;
      let invocations = 0;
      const apiBefore = await emulator.apiCalls(projectId);
      await d1Counters(true);
      while (processed < totalEvents) {
        // Webhooks reach the queue as Smart Router fires them: pay until a full batch is waiting (not timed).
        while (backlog.length < perBatch) {
          await emulator.pay(projectId);
          payments += 1;
          backlog.push(...(await emulator.newEvents(projectId)));
        }
        const events = backlog.splice(0, Math.min(perBatch, totalEvents - processed));
        const messages = events.map((event) => ({
          id: randomUUID().replaceAll("-", ""),
          timestamp: new Date(),
          attempts: 1,
          body: {
            v: 1,
            merchant_id: merchantId,
            event_id: event.id,
            event_type: event.name,
            received_at: new Date().toISOString(),
            delivery_id: randomUUID(),
          },
        }));
        const started = performance.now();
        const result = await handler.queue(QUEUE, messages);
        busyMs += performance.now() - started;
        invocations += 1;
        if (result.outcome !== "ok") {
          throw new Error(
            `consumer ${label}: queue handler outcome ${result.outcome}; last worker log lines:\n${worker.logs.recent.join("\n")}`,
          );
        }
        acked += result.ackAll ? messages.length : result.explicitAcks.length;
        retried += result.retryBatch?.retry ? messages.length : result.retryMessages.length;
        processed += events.length;
      }
      const d1 = await d1Counters();
      const api = await emulator.apiCalls(projectId);
      const shard = await worker.d1For(merchantId);
      const outcomes = await shard
        .prepare("SELECT outcome, count(*) AS n FROM events WHERE merchant_id = ? GROUP BY outcome")
        .bind(merchantId)
        .all();
      const stored = await shard.prepare("SELECT count(*) AS n FROM transactions WHERE merchant_id = ?").bind(merchantId).first();
      const statements = d1.queries + d1.batchStatements;
      const roundTrips = d1.queries + d1.batches;
      return {
        events: processed,
        payments,
        perBatch,
        invocations,
        busyMs,
        eventsPerSecond: processed / (busyMs / 1000),
        acked,
        retried,
        d1: {
          ...d1,
          statements,
          roundTrips,
          statementsPerEvent: statements / processed,
          roundTripsPerEvent: roundTrips / processed,
        },
        apiCalls: api.total - apiBefore.total,
        apiCallsPerEvent: (api.total - apiBefore.total) / processed,
        rateLimited: api.rateLimited - apiBefore.rateLimited,
        inbox: Object.fromEntries(outcomes.results.map((row) => [row.outcome, row.n])),
        transactionsStored: stored.n,
      };
    }

    const oneByOne = await run("one-by-one", oneByOneEvents, 1);
    const batched = await run("batched", batchedEvents, batchSize);
    return {
      oneByOne,
      batched,
      throughputRatio: batched.eventsPerSecond / oneByOne.eventsPerSecond,
      statementsRatio: oneByOne.d1.statementsPerEvent / batched.d1.statementsPerEvent,
      roundTripsRatio: oneByOne.d1.roundTripsPerEvent / batched.d1.roundTripsPerEvent,
      workerLogErrors: worker.logs.errors,
    };
  } finally {
    await worker.dispose();
    emulator.close();
  }
}
