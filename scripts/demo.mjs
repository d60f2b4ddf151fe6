// `npm run demo [-- --payments 200] [--seed N]`: a scripted run through the whole local stack with moderate chaos, then a
// table of the emulator's truth against what the status API reports. Exits 1 on any mismatch.
import { parseArgs } from "node:util";
import {
  compareAll,
  drivePayments,
  mapConcurrent,
  openShop,
  progressBar,
  seededRandom,
  shutDown,
  startStack,
  statusApi,
  stopOnSignals,
  table,
  waitForMatch,
  waitForQuiet,
} from "./stack.mjs";

const { values } = parseArgs({
  options: {
    payments: { type: "string", default: "200" },
    rate: { type: "string", default: "20" },
    seed: { type: "string", default: String(Date.now() % 100_000) },
    port: { type: "string", default: "8787" },
  },
});
const count = Number(values.payments);
const seed = Number(values.seed);

// Emulated delays ×0.05: APMs complete in 150 ms, dispute steps take 250 ms, webhook retries start after 6 s.
const TIME_SCALE = 0.05;
const CHAOS = { duplicate_rate: 0.2, max_extra_delay_ms: 20_000, api_5xx_rate: 0.05, api_429_rate: 0.05 };

stopOnSignals();
const started = Date.now();
try {
  const stack = await startStack({ name: "demo", port: Number(values.port), timeScale: TIME_SCALE, persistTo: "demo-state", frozen: true });
  const shop = await openShop(stack, { merchantId: `demo-run-${Date.now().toString(36)}`, fast: true, settings: { chaos: CHAOS } });
  console.log(
    `demo: ${count} payments (seed ${seed}) for merchant ${shop.merchantId}; chaos: 20% duplicate deliveries, ` +
      "up to 1 s reordering, 5% API 5xx, 5% API 429",
  );

  const run = await drivePayments(shop, {
    count,
    random: seededRandom(seed),
    perSecond: Number(values.rate),
    pollMs: 100,
    onProgress: progressBar("payments"),
  });
  for (const failure of run.failures) console.log(`  driver: ${failure}`);

  const quiet = await waitForQuiet(shop, 120_000);
  const { transactions: truth } = await shop.truth();
  const keys = [shop.creds.api_key, ...(await Promise.all([1, 2, 3].map(() => newApiKey(stack, shop))))];
  const status = statusApi(stack, keys);
  await waitForMatch(status, truth, 120_000, progressBar("settling"));

  // The verdict comes from GET /v1/transactions/{id}, one per payment.
  const records = new Map();
  await mapConcurrent(truth, 8, async (tx) => {
    const answer = await status(`/v1/transactions/${tx.id}`);
    if (answer.status === 200) records.set(tx.id, answer.body.transaction);
  });
  const { rows, wrong } = compareAll(truth, records);
  const { counters } = await shop.counters();

  console.log(`\ntruth vs status API, per final status (${truth.length} payments):\n`);
  const totals = rows.reduce(
    (t, r) => ({
      status: "total",
      truth: t.truth + r.truth,
      matching: t.matching + r.matching,
      mismatched: t.mismatched + r.mismatched,
      missing: t.missing + r.missing,
    }),
    { truth: 0, matching: 0, mismatched: 0, missing: 0 },
  );
  console.log(
    table(
      [
        { key: "status", title: "final status", left: true },
        { key: "truth", title: "in truth" },
        { key: "matching", title: "matching" },
        { key: "mismatched", title: "mismatched" },
        { key: "missing", title: "missing" },
      ],
      [...rows, totals],
    ),
  );
  for (const { truth: t, record, diff } of wrong.slice(0, 10)) {
    const detail = diff[0] === "missing" ? "missing" : diff.map((f) => `${f}: truth ${t[f]} / service ${record[f]}`).join(", ");
    console.log(`  ✗ ${t.id} (${t.name}): ${detail}`);
  }
  const d = counters.deliveries;
  const api = counters.api.sandbox;
  console.log(
    `\nwebhooks: ${d.scheduled} deliveries (${d.duplicated} duplicates), ${d.succeeded} accepted, ${d.failed + d.network_errors} failed, ${d.retries} retried` +
      `\nSmart Router API: ${api.requests} calls from the worker, ${api.injected_5xx} answered 5xx and ${api.injected_429} answered 429 on purpose` +
      `${quiet ? "" : "\nwarning: the emulator still had deliveries or timers pending after 120 s"}` +
      `\n${wrong.length === 0 ? "✓ every payment matches" : `✗ ${wrong.length} payments differ`} · ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  await shutDown(wrong.length === 0 && run.failures.length === 0 ? 0 : 1);
} catch (error) {
  await shutDown(1, `npm run demo failed: ${error.stack ?? error.message}`);
}

async function newApiKey(stack, shop) {
  return (await stack.admin(`/admin/merchants/${shop.merchantId}/api-keys`, { method: "POST" })).api_key.key;
}
