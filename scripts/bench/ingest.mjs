// Section 1 — ingest: the real worker in workerd versus a minimal Node + Hono server (the machine's ceiling), both
// loaded over loopback by the same bounded load generator running in its own process.
import { createHash, randomBytes } from "node:crypto";
import path from "node:path";
import { childPids, cpuMs } from "./lib/cpu.mjs";
import { runNode, startNode } from "./lib/proc.mjs";
import { startWorker } from "./lib/worker.mjs";

const LOADGEN = path.join(import.meta.dirname, "lib/loadgen.mjs");
const CEILING = path.join(import.meta.dirname, "lib/ceiling-server.mjs");

export async function benchIngest(build, { concurrency, warmupMs, durationMs, maxRequests, breakdownMs, rounds: roundCount = 2 }) {
  // Each load also reports the CPU the serving side spent per answered request (`cpu` measures it, in ms): unlike
  // requests per second, CPU time does not count what other tenants of a shared machine take.
  const load = async (origin, pathname, authorization, { method = "POST", measureMs = durationMs, warmMs = warmupMs, cpu } = {}) => {
    const before = cpu ? Object.fromEntries(Object.entries(cpu).map(([name, read]) => [name, read()])) : {};
    const result = await loadOnly(origin, pathname, authorization, { method, measureMs, warmMs });
    if (cpu) {
      const perRequest = (name) => ((cpu[name]() - before[name]) * 1000) / Math.max(1, result.answeredInAll);
      result.cpuSplitUs = Object.fromEntries(Object.keys(cpu).map((name) => [name, perRequest(name)]));
      result.cpuUsPerRequest = Object.values(result.cpuSplitUs).reduce((sum, us) => sum + us, 0);
    }
    return result;
  };
  const loadOnly = (origin, pathname, authorization, { method, measureMs, warmMs }) =>
    runNode(
      LOADGEN,
      [
        JSON.stringify({
          origin,
          path: pathname,
          method,
          headers: authorization ? { authorization } : {},
          concurrency,
          warmupMs: warmMs,
          durationMs: measureMs,
          maxRequests,
        }),
      ],
      { timeoutMs: warmMs + measureMs + 30_000 },
    );
  // No consumer settles anything here, so the edge's backlog gate (ingest/backlog.ts) would refuse past ten minutes of
  // the events quota: the load's merchant gets the highest quota, a backlog of 10 million, so the gate still runs on every
  // delivery but never refuses; past 200 waiting it would park every delivery (a flood), so both workers here take the
  // gate of a merchant whose consumer keeps up (lib/worker.mjs KEEPING_UP): the gate is asked, the queue is the path.
  const INGEST_MERCHANT = { rateLimits: { events_rpm: 1_000_000 } };
  const short = { measureMs: breakdownMs, warmMs: Math.min(warmupMs, 1000) };

  // Both servers are up for the whole section; loads alternate (worker, ceiling, worker, ceiling…) so that other
  // processes on the machine weigh on both alike. The idle one costs nothing while the other is loaded.
  // The worker: wrangler.toml's bindings, no queue consumer attached (deliveries pile up in the local queue, so no
  // fetch-back work competes with ingest for the two cores).
  const worker = await startWorker(build, { keepUp: true });
  // The worker's serving side: its workerd process, and this process, where Miniflare reads workerd's log lines.
  const workerdPids = childPids(process.pid, "workerd");
  const workerCpu = { workerd: () => cpuMs(workerdPids), node: () => cpuMs([], { self: true }) };
  const username = `sr_${randomBytes(6).toString("hex")}`;
  const password = randomBytes(24).toString("base64url");
  const passwordHash = createHash("sha256").update(password).digest("hex");
  let ceiling;
  let memoryWorker;
  let plainWorker;
  const rounds = { worker: [], plain: [], ceiling: [] };
  const breakdown = {};
  try {
    ceiling = await startNode(CEILING, [JSON.stringify({ merchantId: "bench-ingest", username, passwordHash })]);
    const ceilingCpu = { node: () => cpuMs([ceiling.child.pid]) };
    const created = await worker.createMerchant(
      "bench-ingest",
      "proj_benchingest",
      `sk_${randomBytes(16).toString("hex")}`,
      INGEST_MERCHANT,
    );
    const webhook = created.webhook;
    // The framework-free Worker (lib/plain-edge.mjs), in its own workerd beside the edge's, loaded in the same rounds.
    plainWorker = await startWorker(build, { plain: true, keepUp: true });
    const plainPids = childPids(process.pid, "workerd").filter((pid) => !workerdPids.includes(pid));
    const plainCpu = { workerd: () => cpuMs(plainPids), node: () => cpuMs([], { self: true }) };
    const plainWebhook = (
      await plainWorker.createMerchant("bench-ingest", "proj_benchingest", `sk_${randomBytes(16).toString("hex")}`, INGEST_MERCHANT)
    ).webhook;
    const perRound = { measureMs: Math.round(durationMs / roundCount), warmMs: warmupMs };
    for (let round = 0; round < roundCount; round++) {
      rounds.worker.push(
        await load(worker.url.origin, webhook.path, `Basic ${btoa(`${webhook.username}:${webhook.password}`)}`, {
          ...perRound,
          cpu: workerCpu,
        }),
      );
      rounds.plain.push(
        await load(plainWorker.url.origin, plainWebhook.path, `Basic ${btoa(`${plainWebhook.username}:${plainWebhook.password}`)}`, {
          ...perRound,
          cpu: plainCpu,
        }),
      );
      rounds.ceiling.push(
        await load(
          `http://127.0.0.1:${ceiling.value.port}`,
          "/webhooks/smart-router/bench-ingest",
          `Basic ${btoa(`${username}:${password}`)}`,
          { ...perRound, cpu: ceilingCpu },
        ),
      );
    }
    // Where the worker's time goes: the runtime and Hono alone (GET /health touches no binding), then the credential
    // check alone (a wrong password: the credential cached per isolate, the hash, a 401; no enqueue).
    breakdown.health = await load(worker.url.origin, "/health", "", { method: "GET", ...short, cpu: workerCpu });
    breakdown.wrongPassword = await load(worker.url.origin, webhook.path, `Basic ${btoa(`${webhook.username}:wrong`)}`, {
      ...short,
      cpu: workerCpu,
    });
    await plainWorker.dispose();
    plainWorker = undefined;
    // Then the whole path with the ceiling's in-memory enqueue in place of the local Queues emulation.
    memoryWorker = await startWorker(build, { memoryQueue: true });
    const memoryPids = childPids(process.pid, "workerd").filter((pid) => !workerdPids.includes(pid) && !plainPids.includes(pid));
    const memoryCpu = { workerd: () => cpuMs(memoryPids), node: () => cpuMs([], { self: true }) };
    const memoryWebhook = (
      await memoryWorker.createMerchant("bench-ingest", "proj_benchingest", `sk_${randomBytes(16).toString("hex")}`, INGEST_MERCHANT)
    ).webhook;
    breakdown.memoryQueue = await load(
      memoryWorker.url.origin,
      memoryWebhook.path,
      `Basic ${btoa(`${memoryWebhook.username}:${memoryWebhook.password}`)}`,
      { ...short, cpu: memoryCpu },
    );
  } finally {
    await ceiling?.stop();
    await worker.dispose();
    await memoryWorker?.dispose();
    await plainWorker?.dispose();
  }

  // Per side: throughput over all rounds; latency percentiles averaged over rounds.
  const combine = (results) => {
    const seconds = results.reduce((sum, r) => sum + r.durationS, 0);
    const mean = (field) => results.reduce((sum, r) => sum + r[field], 0) / results.length;
    return {
      requests: results.reduce((sum, r) => sum + r.requests, 0),
      ok: results.reduce((sum, r) => sum + r.ok, 0),
      errors: results.reduce((sum, r) => sum + r.errors, 0),
      durationS: seconds,
      rps: results.reduce((sum, r) => sum + r.ok, 0) / seconds,
      cpuUsPerRequest: mean("cpuUsPerRequest"),
      cpuSplitUs: Object.fromEntries(
        Object.keys(results[0].cpuSplitUs).map((name) => [name, results.reduce((sum, r) => sum + r.cpuSplitUs[name], 0) / results.length]),
      ),
      p50: mean("p50"),
      p99: mean("p99"),
      max: Math.max(...results.map((r) => r.max)),
    };
  };
  const workerResult = combine(rounds.worker);
  const ceilingResult = combine(rounds.ceiling);
  const plainResult = combine(rounds.plain);
  return {
    concurrency,
    warmupMs,
    durationMs,
    rounds: roundCount,
    worker: workerResult,
    ceiling: ceilingResult,
    plain: plainResult,
    ratio: workerResult.rps / ceilingResult.rps,
    // The ingest target: the edge as a share of the framework-free Worker, in throughput and in CPU per delivery.
    plainRatio: workerResult.rps / plainResult.rps,
    plainCpuRatio: plainResult.cpuUsPerRequest / workerResult.cpuUsPerRequest,
    plainRatioPerRound: rounds.worker.map((w, i) => w.rps / rounds.plain[i].rps),
    memoryQueueRatio: breakdown.memoryQueue.answersPerSecond / ceilingResult.rps,
    cpuRatio: ceilingResult.cpuUsPerRequest / workerResult.cpuUsPerRequest,
    workerdPids: workerdPids.length,
    ratioPerRound: rounds.worker.map((w, i) => w.rps / rounds.ceiling[i].rps),
    perRound: rounds,
    workerBreakdown: breakdown,
    workerLogLines: worker.logs.lines,
    workerLogErrors: worker.logs.errors,
  };
}
