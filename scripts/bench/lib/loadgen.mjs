// A bounded HTTP load generator, run as its own process: `node loadgen.mjs '<json config>'`.
// N keep-alive connections (undici Pool), one request in flight per connection, for a warm-up then a measured
// period; stops at whichever comes first of the duration and the request cap. Prints one JSON line with the result.
import { Pool } from "undici";

const config = JSON.parse(process.argv[2] ?? "{}");
const { origin, path, method = "POST", headers = {}, concurrency = 16, warmupMs = 2000, durationMs = 8000, maxRequests = 500_000 } = config;
if (!origin || !path) throw new Error("loadgen: origin and path are required");
if (!new URL(origin).hostname.match(/^(127\.0\.0\.1|localhost)$/)) throw new Error("loadgen: loopback only");

const pool = new Pool(origin, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
let sequence = 0;
// Every delivery names a different event, as Smart Router's would.
const body = () => `{"event_id":"ev_bench${(sequence++).toString(36)}","event_type":"transaction.captured"}`;

async function phase(ms, cap, record) {
  const latencies = record ? new Float64Array(cap) : null;
  const statuses = {};
  let issued = 0;
  let done = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + ms;
  const client = async () => {
    while (issued < cap && performance.now() < deadline) {
      issued += 1;
      const t0 = performance.now();
      try {
        const response = await pool.request(
          method === "POST"
            ? { path, method, headers: { "content-type": "application/json", ...headers }, body: body() }
            : { path, method, headers },
        );
        await response.body.text();
        const t1 = performance.now();
        statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1;
        if (latencies) latencies[done] = t1 - t0;
        done += 1;
      } catch {
        errors += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  const elapsed = performance.now() - started;
  return { elapsed, done, errors, statuses, latencies: latencies?.subarray(0, done) };
}

const warmup = await phase(warmupMs, maxRequests, false);
const measured = await phase(durationMs, maxRequests, true);
await pool.close();

const sorted = Float64Array.from(measured.latencies).sort();
const pct = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : null);
const ok = measured.statuses[200] ?? 0;
process.stdout.write(
  `${JSON.stringify({
    concurrency,
    durationS: measured.elapsed / 1000,
    requests: measured.done,
    // Answers in warm-up and measurement together: what a CPU reading taken around the whole run divides by.
    answeredInAll: warmup.done + measured.done,
    ok,
    errors: measured.errors,
    statuses: measured.statuses,
    rps: ok / (measured.elapsed / 1000),
    answersPerSecond: measured.done / (measured.elapsed / 1000),
    p50: pct(50),
    p99: pct(99),
    max: sorted.length ? sorted[sorted.length - 1] : null,
  })}\n`,
);
