// A leaked-credential flood under a running `wrangler dev` (`npm run chaos -- --flood <n>`, issue 20): forged deliveries
// sent with a merchant's real webhook credential, and what the run samples meanwhile (the merchant's Smart Router calls,
// the parked deliveries and their wake-ups, the forged ids settled in the inbox). The local D1 files are read with
// node:sqlite, read-only: `wrangler d1 execute` (queryLocalD1) starts a process per shard, about a second of CPU each,
// which sampled every second would load the 2-core machine and slow the very deliveries being measured.
import { randomBytes } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { d1SqliteFiles } from "./lib-shard-fault.mjs";
import { http, sleep } from "./stack.mjs";

/** The forged ids' prefix: `ev_` and letters, so the ids pass the edge's shape check like any genuine id. */
export const FLOOD_ID_PREFIX = "ev_flood";
/** The forged ids in SQL, as a range on `column` (every id is the prefix and letters or digits, all below `{`). */
const floodIds = (column) => `${column} > '${FLOOD_ID_PREFIX}' AND ${column} < '${FLOOD_ID_PREFIX}{'`;
/** A merchant id fit to be quoted in SQL (ours are letters, digits and dashes). */
const quoted = (merchantId) => `'${merchantId.replace(/[^A-Za-z0-9_-]/g, "")}'`;
/** How long one read waits on workerd's write lock before the sample is skipped (the next one reads again). */
const READ_TIMEOUT_MS = 2_000;

/** A forged event id: the prefix and 20 random letters or digits. */
function forgedId() {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return FLOOD_ID_PREFIX + [...randomBytes(20)].map((byte) => alphabet[byte % alphabet.length]).join("");
}

/**
 * Sends `count` forged deliveries to the merchant's webhook path with its Basic credential, evenly over `seconds`,
 * `concurrency` at a time (a slow edge stretches the flood rather than piling requests up). Answers one row per
 * delivery: its id, status (0: no answer), Retry-After header and when it was answered.
 */
export async function sendFlood({ workerUrl, webhook, count, seconds, concurrency }) {
  const authorization = `Basic ${Buffer.from(`${webhook.username}:${webhook.password}`).toString("base64")}`;
  const answers = [];
  const start = Date.now();
  let next = 0;
  const sender = async () => {
    // Each sender ends once every index has been taken: `next` only grows.
    for (let index = next++; index < count; index = next++) {
      const due = start + (index * seconds * 1000) / count;
      if (due > Date.now()) await sleep(due - Date.now());
      const id = forgedId();
      try {
        const answer = await http(`${workerUrl}${webhook.path}`, { body: { event_id: id }, headers: { authorization } });
        answers.push({ id, status: answer.status, retryAfter: answer.headers.get("retry-after"), at: Date.now() });
      } catch (error) {
        answers.push({ id, status: 0, retryAfter: null, at: Date.now(), error: String(error.message) });
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, sender));
  return answers;
}

/** The rows of `sql` from every local D1 file that has `table` (each shard holds its own merchants' rows), read-only. */
export function readLocalShards(persistDir, table, sql) {
  const rows = [];
  for (const file of d1SqliteFiles(persistDir)) {
    const db = new DatabaseSync(file, { readOnly: true, timeout: READ_TIMEOUT_MS });
    try {
      if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table)) rows.push(...db.prepare(sql).all());
    } finally {
      db.close();
    }
  }
  return rows;
}

/** One sample of the parking: deliveries parked per merchant, and the wake-ups booked (merchant, due_at). */
function parkingNow(persistDir) {
  const parked = readLocalShards(
    persistDir,
    "parked_deliveries",
    "SELECT merchant_id, COUNT(*) AS n FROM parked_deliveries GROUP BY merchant_id",
  );
  const wakeups = readLocalShards(persistDir, "parked_wakeups", "SELECT merchant_id, due_at FROM parked_wakeups");
  return {
    parked: Object.fromEntries(parked.map((row) => [row.merchant_id, Number(row.n)])),
    wakeups: wakeups.map((row) => `${row.merchant_id} ${row.due_at}`),
  };
}

/** The flooded merchant's forged ids in its inbox, by outcome (`rejected`: refused after their fetch-back). */
export function floodInInbox(persistDir, merchantId) {
  const rows = readLocalShards(
    persistDir,
    "events",
    `SELECT outcome, COUNT(*) AS n FROM events WHERE merchant_id = ${quoted(merchantId)} AND ${floodIds("id")} GROUP BY outcome`,
  );
  return Object.fromEntries(rows.map((row) => [row.outcome, Number(row.n)]));
}

/**
 * Samples every second, until `stop()` or `maxMs`: the flooded project's Smart Router calls (the emulator's counter of
 * its bucket), the parking, and the flooded merchant's forged ids in its inbox. A failed sample is skipped and counted.
 */
export function startFloodSampler({ persistDir, shop, maxMs }) {
  const samples = [];
  const failures = { count: 0, first: "" };
  let stopped = false;
  const deadline = Date.now() + maxMs;
  const loop = (async () => {
    // Ends on stop() or at the deadline, whichever comes first.
    while (!stopped && Date.now() < deadline) {
      const at = Date.now();
      try {
        const { counters } = await shop.counters();
        const parking = parkingNow(persistDir);
        samples.push({ at, calls: counters.api.sandbox.requests, ...parking, inbox: floodInInbox(persistDir, shop.merchantId) });
      } catch (error) {
        failures.count++;
        failures.first ||= String(error.message);
      }
      await sleep(Math.max(0, at + 1000 - Date.now()));
    }
  })();
  return {
    samples,
    failures,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/** The flooded project's call counter at `at` (epoch ms): the last sample taken at or before it (the first one before any). */
export function callsAt(samples, at) {
  let found = samples[0];
  for (const sample of samples) if (sample.at <= at) found = sample;
  return found?.calls ?? 0;
}

/** The forged deliveries' answers: 200 (admitted), 429 (and how many of those lacked Retry-After), anything else. */
export function countAnswers(answers) {
  const refused = answers.filter((answer) => answer.status === 429);
  const other = new Map();
  for (const { status } of answers) if (status !== 200 && status !== 429) other.set(status, (other.get(status) ?? 0) + 1);
  return {
    sent: answers.length,
    admitted: answers.filter((answer) => answer.status === 200).length,
    refused: refused.length,
    withoutRetryAfter: refused.filter((answer) => !answer.retryAfter).length,
    retryAfter: [...new Set(refused.map((answer) => answer.retryAfter).filter(Boolean))],
    other: [...other].map(([status, n]) => `${n}× ${status === 0 ? "no answer" : status}`),
    firstRefusedAt: refused.length > 0 ? Math.min(...refused.map((answer) => answer.at)) : null,
  };
}

/**
 * The flooded project's calls attributed to the flood: those in [flood start, every admitted forged id settled] minus
 * the project's own rate over an equal window just before the flood (cut at the storm's start when the storm had not run
 * that long), times the window.
 */
export function floodCalls(samples, flood, stormStartedAt) {
  const end = flood.settledAt ?? samples.at(-1)?.at ?? flood.endedAt;
  const windowMs = end - flood.startedAt;
  const gross = callsAt(samples, end) - callsAt(samples, flood.startedAt);
  const baselineFrom = Math.max(stormStartedAt, flood.startedAt - windowMs);
  const baselineMs = flood.startedAt - baselineFrom;
  const baselineCalls = callsAt(samples, flood.startedAt) - callsAt(samples, baselineFrom);
  const baseline = baselineMs > 0 ? (baselineCalls / baselineMs) * windowMs : 0;
  return { end, windowMs, gross, baselineMs, baselineCalls, baseline, net: gross - baseline };
}

/**
 * The parking in [from, to]: the most deliveries parked at once (all merchants, and per merchant), parked message-minutes
 * (each sample's count for the time to the next one), and the wake-ups booked: distinct (merchant, due_at) rows seen. A
 * wake-up row lives from its booking until its message is taken, at least MIN_WAKEUP_SECONDS (1 s), so a sampler every
 * second sees nearly every one: a lower bound of the wake-up messages sent (one per booking, parking.ts).
 */
export function parkingFigures(samples, from, to) {
  const inWindow = samples.filter((sample) => sample.at >= from && sample.at <= to);
  const maxByMerchant = {};
  const wakeups = new Set();
  let maxParked = 0;
  let messageMs = 0;
  inWindow.forEach((sample, index) => {
    const total = Object.values(sample.parked).reduce((sum, n) => sum + n, 0);
    maxParked = Math.max(maxParked, total);
    for (const [merchantId, n] of Object.entries(sample.parked)) maxByMerchant[merchantId] = Math.max(maxByMerchant[merchantId] ?? 0, n);
    messageMs += total * ((inWindow[index + 1]?.at ?? sample.at + 1000) - sample.at);
    for (const wakeup of sample.wakeups) wakeups.add(wakeup);
  });
  const messageMinutes = messageMs / 60_000;
  return {
    samples: inWindow.length,
    maxParked,
    maxByMerchant,
    messageMinutes,
    wakeups: wakeups.size,
    perWaitingMinute: messageMinutes > 0 ? wakeups.size / messageMinutes : 0,
  };
}

/**
 * Every fetch-back of the merchant's events on a shard: the fetch_backs rows and the ones folded into inbox rows (the
 * fetch-back that settled the event, migration 0024), as one row source `(event_id, at, outcome, via, api_calls)`.
 */
const allFetchBacks = (merchantId) => `(
  SELECT event_id, at, outcome, via, api_calls FROM fetch_backs WHERE merchant_id = ${quoted(merchantId)}
  UNION ALL
  SELECT id, fetch_back_at, fetch_back_outcome, fetch_back_via, fetch_back_api_calls FROM events
    WHERE merchant_id = ${quoted(merchantId)} AND fetch_back_at IS NOT NULL)`;

/**
 * The calls the service itself recorded for the forged ids (its fetch-backs timeline: each by-id fetch counts the calls
 * it made; a list page is charged to the events it verified, never to a forged id). Exact for the by-id fetches of
 * forged ids, so a lower bound of the flood's calls: list pages are not in it, nor a batch whose commit failed.
 */
export function forgedFetchCalls(persistDir, merchantId) {
  const rows = readLocalShards(
    persistDir,
    "fetch_backs",
    `SELECT COALESCE(SUM(api_calls), 0) AS calls, COUNT(*) AS fetches, COALESCE(SUM(api_calls = 0 AND outcome = 'retry'), 0) AS refused
     FROM ${allFetchBacks(merchantId)} WHERE ${floodIds("event_id")} AND via = 'event'`,
  );
  // One row per shard file: the merchant's rows are on its own shard, the others answer zeros.
  const sum = (key) => rows.reduce((total, row) => total + Number(row[key] ?? 0), 0);
  return { calls: sum("calls"), fetches: sum("fetches"), refused: sum("refused") };
}

/**
 * Where the other merchant's time went, per event it was delivered (first 2xx answer, from the emulator's delivery log):
 * delivery answered → the first fetch-back of it answered (its shard's fetch-backs, rows and folded: the queue's wait, then the
 * verification), grouped like the lag table by when it was delivered. A lag that grows here is the shared queue or the
 * consumer; one that grows only after it is the commit or the status API.
 */
export function verifyWaits(persistDir, merchantId, deliveries, window) {
  const delivered = new Map();
  for (const d of deliveries) {
    if (d.forged || !(d.status >= 200 && d.status < 300)) continue;
    const at = Date.parse(d.at);
    if (!delivered.has(d.event_id) || at < delivered.get(d.event_id)) delivered.set(d.event_id, at);
  }
  const firstFetch = readLocalShards(
    persistDir,
    "fetch_backs",
    `SELECT event_id, MIN(at) AS at FROM ${allFetchBacks(merchantId)} GROUP BY event_id`,
  );
  const windows = { before: [], during: [], after: [] };
  for (const row of firstFetch) {
    const sent = delivered.get(row.event_id);
    if (sent === undefined) continue;
    const key = sent < window.startedAt ? "before" : sent < window.endedAt ? "during" : "after";
    windows[key].push(Math.max(0, Date.parse(row.at) - sent));
  }
  for (const list of Object.values(windows)) list.sort((a, b) => a - b);
  return windows;
}
