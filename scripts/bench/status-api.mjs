// Section 5 — status API: read latency at 10,000 stored transactions, against the bundled worker in workerd, with real
// API key auth (Bearer key looked up by id, SHA-256 compared) and the real per-key rate limiter in the path.
import { randomBytes } from "node:crypto";
import { Pool } from "undici";
import { summarize } from "./lib/stats.mjs";
import { startWorker } from "./lib/worker.mjs";

const CAPTURED = ["completed", "refunded", "partially-refunded"];

/** Inserts `count` transactions for a merchant in one statement; shapes and values like the consumer writes them. */
function seedSql() {
  return `
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?3)
INSERT INTO transactions (merchant_id, id, project_id, invoice_id, customer_id, name, payment_type, gateway_name, status,
  currency, amount, authorized_amount, captured_amount, refunded_amount, available_amount, voided_amount, metadata,
  sandbox, error_code, error_message, three_d_s_status, chargedback, created_at, snapshot_version, last_event_id,
  last_event_name, last_event_fired_at, updated_at)
SELECT ?1, printf('tr_%s%07d', ?4, n), ?2, NULL, NULL, printf('Order %d', n),
  CASE n % 5 WHEN 0 THEN 'sandbox-apm' ELSE 'card' END, 'sandbox',
  CASE n % 20 WHEN 0 THEN 'authorized' WHEN 1 THEN 'authorized' WHEN 2 THEN 'failed' WHEN 3 THEN 'failed'
    WHEN 4 THEN 'refunded' WHEN 5 THEN 'partially-refunded' WHEN 6 THEN 'pending' WHEN 7 THEN 'voided' ELSE 'completed' END,
  'EUR', printf('%d.%02d', 5 + n % 495, n % 100), printf('%d.%02d', 5 + n % 495, n % 100),
  CASE WHEN n % 20 >= 4 AND n % 20 NOT IN (6, 7) THEN printf('%d.%02d', 5 + n % 495, n % 100) ELSE '0' END,
  CASE n % 20 WHEN 4 THEN printf('%d.%02d', 5 + n % 495, n % 100) WHEN 5 THEN '1.00' ELSE '0' END,
  '0', '0', json_object('order_id', printf('ord_%d', n), 'channel', 'web'), 0, NULL, NULL, NULL, 0,
  strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', (?3 - n) * 250 + 30)),
  printf('%013d', n), printf('ev_%s%07d', ?4, n), 'transaction.captured',
  strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', (?3 - n) * 250)),
  strftime('%Y-%m-%dT%H:%M:%fZ', 'now', printf('-%d seconds', (?3 - n) * 250))
FROM seq`;
}

export async function benchStatusApi(
  build,
  { transactions = 10_000, getRequests = 1000, listRequests = 300, walkRequests = 300, keys = 12 },
) {
  const worker = await startWorker(build);
  const pool = new Pool(worker.url.origin, { connections: 1, pipelining: 1, keepAliveTimeout: 60_000 });
  try {
    const merchantId = "bench-status";
    const created = await worker.createMerchant(merchantId, "proj_benchstatus", `sk_${randomBytes(16).toString("hex")}`);
    await worker.createMerchant("bench-status-other", "proj_benchother", `sk_${randomBytes(16).toString("hex")}`);
    // The status API limiter allows 600 requests per minute per key: spread the reads over several live keys.
    const apiKeys = [created.api_key];
    for (let i = 1; i < keys; i++)
      apiKeys.push((await worker.admin(`/admin/merchants/${merchantId}/api-keys`, { method: "POST" })).api_key.key);

    const seedStarted = performance.now();
    // Each merchant's rows on its shard (src/db/shards.ts): the two usually sit on different ones.
    const shard = await worker.d1For(merchantId);
    const otherShard = await worker.d1For("bench-status-other");
    await shard.prepare(seedSql()).bind(merchantId, "proj_benchstatus", transactions, "bench").run();
    await otherShard.prepare(seedSql()).bind("bench-status-other", "proj_benchother", 2000, "other").run();
    for (const db of new Set([shard, otherShard])) {
      await db
        .prepare(
          `INSERT INTO fulfillments (merchant_id, transaction_id, message_id, status, attempts, requested_at)
         SELECT merchant_id, id, 'msg_' || id, 'not_configured', 0, updated_at FROM transactions WHERE status IN (${CAPTURED.map(() => "?").join(", ")})`,
        )
        .bind(...CAPTURED)
        .run();
      await db.prepare("ANALYZE").run();
    }
    const seedMs = performance.now() - seedStarted;
    const stored = await shard.prepare("SELECT count(*) AS n FROM transactions WHERE merchant_id = ?").bind(merchantId).first();
    const ids = (await shard.prepare("SELECT id FROM transactions WHERE merchant_id = ?").bind(merchantId).all()).results.map((r) => r.id);

    let sent = 0;
    const statuses = {};
    const get = async (pathname) => {
      const key = apiKeys[sent++ % apiKeys.length];
      const t0 = performance.now();
      const response = await pool.request({ path: pathname, method: "GET", headers: { authorization: `Bearer ${key}` } });
      const text = await response.body.text();
      const ms = performance.now() - t0;
      statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1;
      return { ms, status: response.statusCode, text };
    };
    const pick = () => ids[Math.floor(Math.random() * ids.length)];

    for (let i = 0; i < 30; i++) await get(`/v1/transactions/${pick()}`);
    for (let i = 0; i < 10; i++) await get("/v1/transactions");

    const getLatencies = [];
    for (let i = 0; i < getRequests; i++) getLatencies.push((await get(`/v1/transactions/${pick()}`)).ms);

    const listLatencies = [];
    for (let i = 0; i < listRequests; i++) listLatencies.push((await get("/v1/transactions")).ms);

    // Keyset walk: status filter, 100 per page, following next_cursor (restarting at the end).
    const walkLatencies = [];
    let cursor = null;
    let pages = 0;
    while (walkLatencies.length < walkRequests) {
      const query = cursor ? `cursor=${cursor}&limit=100` : "status=completed&limit=100";
      const { ms, status, text } = await get(`/v1/transactions?${query}`);
      walkLatencies.push(ms);
      pages += 1;
      cursor = status === 200 ? JSON.parse(text).next_cursor : null;
    }

    return {
      transactions: stored.n,
      otherMerchantTransactions: 2000,
      seedMs,
      apiKeys: apiKeys.length,
      get: summarize(getLatencies),
      list: summarize(listLatencies),
      walk: { ...summarize(walkLatencies), pages },
      statuses,
      workerLogErrors: worker.logs.errors,
    };
  } finally {
    await pool.close();
    await worker.dispose();
  }
}
