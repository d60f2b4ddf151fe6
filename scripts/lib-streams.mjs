// Every transaction's stream (issue 22) under `npm run chaos`: two endpoints of each merchant on the emulator's sinks, one
// subscribed to `*` whose sink fails a fifth of first attempts (by webhook-id), one filtered to some types. After the run
// the sinks' requests are checked against the service's own record of status changes (transaction_changes, read from the
// local D1 files) and the emulator's truth; then a replay of a slice of the `*` endpoint's messages must resend exactly
// those messages. The checking functions are pure (test/scripts/streams.test.mjs); the rest drives the stack.
import { readLocalShards } from "./lib-flood.mjs";
import { sleep, table } from "./stack.mjs";

/** The filtered endpoint's types: the ones an order system ships, refunds or disputes on. */
export const FILTERED_EVENTS = [
  "transaction.captured",
  "transaction.refunded",
  "transaction.partially-refunded",
  "transaction.voided",
  "transaction.chargeback-initiated",
];
/** The `*` endpoint's sink fails this share of first attempts (a message's first POST; its retry is answered 200). */
export const FIRST_ATTEMPT_FAILURES = 0.2;
/** The replay covers the `*` endpoint's messages created in this slice of its messages (by creation order). */
const REPLAY_SLICE = [0.4, 0.6];
/** Horizons: every message delivered (a retry comes 2.5–5 s after a failure), the replay completed. */
const DELIVERED_MS = 180_000;
const REPLAY_MS = 120_000;

const CAPTURED = "transaction.captured";
/** A message's place in its lane: a change's message at 2 × sequence, `transaction.captured` right after it. */
const positionOf = (sequence, type) => 2 * sequence + (type === CAPTURED ? 1 : 0);

/** A sink's requests as receipts of messages, in arrival order; requests that are no message (no webhook-id) are left out. */
export function receiptsOf(requests) {
  return requests
    .filter((request) => request.headers?.["webhook-id"] && request.json?.data?.transaction?.id)
    .map((request) => ({
      id: request.headers["webhook-id"],
      tx: request.json.data.transaction.id,
      type: request.json.type,
      sequence: request.json.data.sequence,
      position: positionOf(request.json.data.sequence, request.json.type),
      previousStatus: request.json.data.previous_status,
      status: request.json.data.transaction.status,
      timestamp: request.json.timestamp,
      body: request.body,
      at: Date.parse(request.received_at),
      ok: request.answered >= 200 && request.answered < 300,
    }));
}

/** Receipts grouped by transaction (each endpoint's lane of that transaction), arrival order kept. */
function byTransaction(receipts) {
  const lanes = new Map();
  for (const receipt of receipts) lanes.set(receipt.tx, [...(lanes.get(receipt.tx) ?? []), receipt]);
  return lanes;
}

/**
 * Receipts that broke the lane's order: a message POSTed while a message before it in the lane (one the endpoint got at
 * some point) had not yet been answered 2xx, or after a later message had already come.
 */
export function outOfOrder(receipts) {
  const broken = [];
  for (const lane of byTransaction(receipts).values()) {
    const positions = new Set(lane.map((r) => r.position));
    const answered = new Set();
    let highest = -1;
    for (const receipt of lane) {
      const waiting = [...positions].some((p) => p < receipt.position && !answered.has(p));
      if (waiting || highest > receipt.position) broken.push(receipt);
      highest = Math.max(highest, receipt.position);
      if (receipt.ok) answered.add(receipt.position);
    }
  }
  return broken;
}

/** Each message once, at its first 2xx receipt, in that order. */
function deliveredOnce(receipts) {
  const seen = new Set();
  const once = [];
  for (const r of receipts) {
    if (!r.ok || seen.has(r.id)) continue;
    seen.add(r.id);
    once.push(r);
  }
  return once;
}

/**
 * The `*` endpoint's stream per transaction against the record's changes (`changes`: transaction id → its changes
 * `{sequence, previous_status, status}` in sequence order) and the truth (`truth`: transaction id → final status,
 * `captured`: ids Smart Router captured). Answers the transactions whose messages do not reproduce the changes (numbers
 * 1..n, each `previous_status` the status before, each type the status), do not end on the truth, or do not carry
 * `transaction.captured` exactly once iff captured (at the sequence of one of its changes).
 */
export function streamProblems({ receipts, changes, truth, captured }) {
  const lanes = byTransaction(deliveredOnce(receipts));
  const problems = { notReproduced: [], notOnTruth: [], capturedNotOnce: [] };
  for (const tx of new Set([...truth.keys(), ...changes.keys(), ...lanes.keys()])) {
    const lane = lanes.get(tx) ?? [];
    const stream = lane.filter((r) => r.type !== CAPTURED);
    const expected = changes.get(tx) ?? [];
    const reproduced =
      stream.length === expected.length &&
      stream.every((r, i) => {
        const change = expected[i];
        const previous = i === 0 ? null : stream[i - 1].status;
        return (
          r.sequence === i + 1 &&
          change.sequence === i + 1 &&
          r.previousStatus === previous &&
          r.previousStatus === change.previous_status &&
          r.status === change.status &&
          r.type === `transaction.${change.status}`
        );
      });
    if (!reproduced) problems.notReproduced.push(tx);
    if (stream.at(-1)?.status !== truth.get(tx)) problems.notOnTruth.push(tx);
    const announced = lane.filter((r) => r.type === CAPTURED);
    const once =
      announced.length === (captured.has(tx) ? 1 : 0) && announced.every((r) => r.sequence >= 1 && r.sequence <= expected.length);
    if (!once) problems.capturedNotOnce.push(tx);
  }
  return problems;
}

/** Whether an endpoint subscribed to `events` takes `type` (exact names; `*` and `transaction.*` take all). */
const takes = (events, type) => events.some((e) => e === "*" || e === "transaction.*" || e === type);

/**
 * The filtered endpoint against the `*` one: receipts of a type it did not subscribe to, and messages (transaction,
 * sequence, type) of its types that one endpoint got and the other did not.
 */
export function filterProblems({ all, some, events }) {
  const key = (r) => `${r.tx} ${r.sequence} ${r.type}`;
  const wanted = new Set(
    deliveredOnce(all)
      .filter((r) => takes(events, r.type))
      .map(key),
  );
  const got = new Set(deliveredOnce(some).map(key));
  return {
    foreign: some.filter((r) => !takes(events, r.type)).length,
    missing: [...wanted].filter((k) => !got.has(k)).length,
    extra: [...got].filter((k) => !wanted.has(k)).length,
  };
}

/**
 * An endpoint's messages as stored (`stored`: rows `{id, status}`) against its sink: stored messages never delivered
 * (answered 2xx), delivered ones the service never stored, and messages delivered twice (a resend after a 2xx).
 */
export function deliveryProblems({ receipts, stored }) {
  const delivered = new Map();
  for (const r of receipts) if (r.ok) delivered.set(r.id, (delivered.get(r.id) ?? 0) + 1);
  const ids = new Set(stored.map((m) => m.id));
  return {
    undelivered: stored.filter((m) => !delivered.has(m.id)).length,
    unknown: [...delivered.keys()].filter((id) => !ids.has(id)).length,
    twice: [...delivered.values()].filter((n) => n > 1).length,
  };
}

/**
 * A replay against the messages of its range (`expected`: stored rows `{id, transaction_id, position}` created in it),
 * the receipts it caused (`resent`) and the receipts before it (`original`): ids expected and not resent, resent and not
 * expected, resent more than once, resent with another body than the original's, resent out of order in a transaction.
 */
export function replayProblems({ expected, resent, original }) {
  const ids = new Set(expected.map((m) => m.id));
  const count = new Map();
  for (const r of resent) count.set(r.id, (count.get(r.id) ?? 0) + 1);
  const bodies = new Map(original.filter((r) => r.ok).map((r) => [r.id, r.body]));
  let misordered = 0;
  for (const lane of byTransaction(resent).values()) {
    lane.forEach((r, i) => {
      if (i > 0 && lane[i - 1].position >= r.position) misordered++;
    });
  }
  return {
    notResent: [...ids].filter((id) => !count.has(id)).length,
    notInRange: [...count.keys()].filter((id) => !ids.has(id)).length,
    twice: [...count.values()].filter((n) => n > 1).length,
    otherBody: resent.filter((r) => bodies.get(r.id) !== r.body).length,
    misordered,
  };
}

/** Nearest-rank percentile of sorted numbers (ms), as seconds with two decimals ("-" for none). */
function seconds(sorted, p) {
  if (sorted.length === 0) return "-";
  return `${(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] / 1000).toFixed(2)} s`;
}

/** One latency row: how many samples, p50, p99, max. */
function latencyRow(what, lags) {
  const sorted = lags.sort((a, b) => a - b);
  return { what, n: sorted.length, p50: seconds(sorted, 50), p99: seconds(sorted, 99), max: seconds(sorted, 100) };
}

/**
 * Latencies of an endpoint's messages: from the message's creation (stored `created_at`) to its first POST received
 * and to its 2xx receipt; and from the first 2xx delivery of a Smart Router webhook that showed the change's status to
 * the message's 2xx receipt (`deliveredAt`: "transaction id status" → epoch ms; a change no delivered webhook showed,
 * or shown by a later webhook than the one that brought it, is not sampled).
 */
export function latencyRows({ name, receipts, stored, deliveredAt }) {
  const created = new Map(stored.map((m) => [m.id, Date.parse(m.created_at)]));
  const first = new Map();
  for (const r of receipts) if (!first.has(r.id)) first.set(r.id, r.at);
  const delivered = deliveredOnce(receipts).filter((r) => created.has(r.id));
  const fromWebhook = [];
  for (const r of delivered) {
    const at = deliveredAt.get(`${r.tx} ${r.status}`);
    if (at !== undefined && r.at >= at) fromWebhook.push(r.at - at);
  }
  return [
    latencyRow(
      `${name}: message created → first POST received`,
      [...first].filter(([id]) => created.has(id)).map(([id, at]) => at - created.get(id)),
    ),
    latencyRow(
      `${name}: message created → answered 2xx`,
      delivered.map((r) => r.at - created.get(r.id)),
    ),
    latencyRow(`${name}: webhook delivered → answered 2xx`, fromWebhook),
  ];
}

/** "transaction id status" → the first 2xx delivery (epoch ms) of a genuine webhook whose snapshot had that status. */
export function webhookDeliveredAt(truth, deliveries) {
  const eventKey = new Map(truth.events.map((e) => [e.id, `${e.transaction_id} ${e.status}`]));
  const at = new Map();
  for (const d of deliveries) {
    if (d.forged || !(d.status >= 200 && d.status < 300) || !eventKey.has(d.event_id)) continue;
    const key = eventKey.get(d.event_id);
    const when = Date.parse(d.at);
    if (!at.has(key) || when < at.get(key)) at.set(key, when);
  }
  return at;
}

/**
 * Every check of one merchant's streams as rows of chaos's check table (`label` prefixes the merchant). `all`/`some`:
 * the two endpoints with their receipts and stored messages; `replay`: the replay's figures, or null when none ran.
 */
export function streamChecks({ label = "", all, some, changes, truth, captured, replay }) {
  const stream = streamProblems({ receipts: all.receipts, changes, truth, captured });
  const filter = filterProblems({ all: all.receipts, some: some.receipts, events: some.events });
  const rows = [
    {
      check: `${label}streams: transactions whose * messages reproduce their changes`,
      expected: truth.size,
      found: truth.size - stream.notReproduced.length,
    },
    { check: "  streams: transactions not ending on the truth", expected: 0, found: stream.notOnTruth.length },
    { check: "  streams: transaction.captured not exactly once iff captured", expected: 0, found: stream.capturedNotOnce.length },
    {
      check: "  streams: POSTs out of order in their lane (both endpoints)",
      expected: 0,
      found: outOfOrder(all.receipts).length + outOfOrder(some.receipts).length,
    },
    { check: "  streams: filtered endpoint: POSTs of a type not subscribed", expected: 0, found: filter.foreign },
    {
      check: "  streams: filtered endpoint: messages of its types missing / extra",
      expected: "0 / 0",
      found: `${filter.missing} / ${filter.extra}`,
    },
  ];
  for (const endpoint of [all, some]) {
    const d = deliveryProblems(endpoint);
    rows.push({ check: `  streams: ${endpoint.name}: stored messages never answered 2xx`, expected: 0, found: d.undelivered });
    rows.push({ check: `  streams: ${endpoint.name}: messages received that were never stored`, expected: 0, found: d.unknown });
  }
  if (replay) {
    const r = replayProblems(replay);
    const counted = `${replay.dryRun.total} / ${replay.done.total} / ${replay.done.sent}`;
    rows.push(
      {
        check: "  replay: dry-run total / total / sent = messages in the range",
        expected: `${replay.expected.length} / ${replay.expected.length} / ${replay.expected.length}`,
        found: counted,
      },
      {
        check: "  replay: messages of the range not resent / resent from outside it",
        expected: "0 / 0",
        found: `${r.notResent} / ${r.notInRange}`,
      },
      {
        check: "  replay: resent twice, with another body, out of order",
        expected: "0 / 0 / 0",
        found: `${r.twice} / ${r.otherBody} / ${r.misordered}`,
      },
    );
  }
  return { rows, stream, filter };
}

// ---------------------------------------------------------------------------------------------------------------------
// Driving the stack

/** A merchant id fit to be quoted in SQL (ours are letters, digits and dashes). */
const quoted = (merchantId) => `'${merchantId.replace(/[^A-Za-z0-9_-]/g, "")}'`;

/**
 * Creates the merchant's two endpoints on emulator sinks (`<merchant>-all`, `<merchant>-some`) through its status API,
 * and makes the `*` one's sink fail FIRST_ATTEMPT_FAILURES of first attempts. Before the storm, so every change of the
 * run is announced to both.
 */
export async function openEndpoints({ stack, status, merchantId }) {
  const open = async (suffix, events) => {
    const sink = `${merchantId}-${suffix}`;
    const answer = await status("/v1/endpoints", {
      body: { url: `${stack.sandboxUrl}/_sandbox/sink/${sink}`, events, description: `chaos ${suffix}` },
    });
    if (answer.status !== 201) throw new Error(`POST /v1/endpoints → ${answer.status} ${JSON.stringify(answer.body)}`);
    return { id: answer.body.endpoint.id, name: suffix === "all" ? "* endpoint" : "filtered endpoint", sink, events };
  };
  const all = await open("all", ["*"]);
  const some = await open("some", FILTERED_EVENTS);
  await stack.sandbox(`/_sandbox/sink/${all.sink}`, { method: "PUT", body: { status: 503, first_attempts: FIRST_ATTEMPT_FAILURES } });
  return { all, some };
}

/** The merchant's endpoint messages as stored, in creation order. */
function storedMessages(persistDir, merchantId) {
  return readLocalShards(
    persistDir,
    "endpoint_messages",
    `SELECT id, endpoint_id, transaction_id, position, status, created_at FROM endpoint_messages
     WHERE merchant_id = ${quoted(merchantId)} ORDER BY created_at, seq`,
  );
}

/** The merchant's recorded status changes: transaction id → `{sequence, previous_status, status}` in sequence order. */
function storedChanges(persistDir, merchantId) {
  const rows = readLocalShards(
    persistDir,
    "transaction_changes",
    `SELECT transaction_id, sequence, previous_status, status FROM transaction_changes
     WHERE merchant_id = ${quoted(merchantId)} ORDER BY transaction_id, sequence`,
  );
  const changes = new Map();
  for (const row of rows) changes.set(row.transaction_id, [...(changes.get(row.transaction_id) ?? []), row]);
  return changes;
}

/** Waits until none of the merchant's messages is pending (horizon DELIVERED_MS); answers how many still are. */
async function waitDelivered(persistDir, merchantId) {
  for (const deadline = Date.now() + DELIVERED_MS; ; ) {
    const pending = storedMessages(persistDir, merchantId).filter((m) => m.status === "pending").length;
    if (pending === 0 || Date.now() > deadline) return pending;
    await sleep(1000);
  }
}

/**
 * Replays the `*` endpoint's messages created in REPLAY_SLICE of its messages: a dry run, then the replay, waited for
 * until it ends (horizon REPLAY_MS). Answers what replayProblems and the report need.
 */
/**
 * The replay's [since, until) over an endpoint's messages in creation order: from the slice's first message to the first
 * one created later than it at or past the slice's end. Messages made in one D1 batch share a `created_at`, so the
 * slice's two ends can fall on one instant (an empty range the API refuses); null when no later message exists.
 */
export function replayRange(own) {
  const first = Math.floor(own.length * REPLAY_SLICE[0]);
  const since = own[first]?.created_at;
  if (!since) return null;
  const later = (m) => m.created_at > since;
  const until = own.slice(Math.floor(own.length * REPLAY_SLICE[1])).find(later)?.created_at ?? own.slice(first).find(later)?.created_at;
  return until ? { since, until } : null;
}

async function replaySlice({ stack, status, endpoint, stored, original }) {
  const own = stored.filter((m) => m.endpoint_id === endpoint.id);
  const range = replayRange(own);
  if (!range) return null;
  const { since, until } = range;
  const expected = own.filter((m) => m.created_at >= since && m.created_at < until);
  const path = `/v1/endpoints/${endpoint.id}`;
  const dry = await status(`${path}/replay`, { body: { since, until, dry_run: true } });
  if (dry.status !== 202) throw new Error(`dry-run replay → ${dry.status} ${JSON.stringify(dry.body)}`);
  const startedAt = Date.now();
  const started = await status(`${path}/replay`, { body: { since, until, dry_run: false } });
  if (started.status !== 202) throw new Error(`replay → ${started.status} ${JSON.stringify(started.body)}`);
  let done = started.body.replay;
  for (const deadline = Date.now() + REPLAY_MS; !["completed", "cancelled"].includes(done.status) && Date.now() < deadline; ) {
    await sleep(1000);
    done = (await status(`${path}/replays/${done.id}`)).body.replay;
  }
  const requests = (await stack.sandbox(`/_sandbox/sink/${endpoint.sink}`)).requests;
  const resent = receiptsOf(requests.slice(original.length));
  return { since, until, expected, resent, original: receiptsOf(original), dryRun: dry.body.replay, done, ms: Date.now() - startedAt };
}

/**
 * After the run: waits for every message to be delivered, reads both sinks, the stored messages and changes, replays a
 * slice, and answers the checks (chaos's table rows) and the figures to print (printStreams).
 */
export async function streamsAfterRun({ stack, status, shop, endpoints, truth, deliveries, label = "" }) {
  const persistDir = stack.persistArgs[1];
  const pending = await waitDelivered(persistDir, shop.merchantId);
  const stored = storedMessages(persistDir, shop.merchantId);
  const changes = storedChanges(persistDir, shop.merchantId);
  const requests = {};
  for (const endpoint of [endpoints.all, endpoints.some]) {
    requests[endpoint.sink] = (await stack.sandbox(`/_sandbox/sink/${endpoint.sink}`)).requests;
  }
  const side = (endpoint) => ({
    ...endpoint,
    receipts: receiptsOf(requests[endpoint.sink]),
    stored: stored.filter((m) => m.endpoint_id === endpoint.id),
  });
  const all = side(endpoints.all);
  const some = side(endpoints.some);
  const replay = await replaySlice({ stack, status, endpoint: endpoints.all, stored, original: requests[endpoints.all.sink] });
  const captured = new Set(truth.events.filter((e) => e.name === "transaction.captured").map((e) => e.transaction_id));
  const finals = new Map(truth.transactions.map((t) => [t.id, t.status]));
  const checks = streamChecks({ label, all, some, changes, truth: finals, captured, replay });
  checks.rows.push({ check: "  streams: messages still pending after the wait", expected: 0, found: pending });
  const deliveredAt = webhookDeliveredAt(truth, deliveries);
  const latency = [all, some].flatMap((endpoint) => latencyRows({ ...endpoint, deliveredAt }));
  return { checks: checks.rows, figures: { label, all, some, replay, latency, changes, captured } };
}

/** The streams' figures: messages and attempts per endpoint, messages per second, the latencies, the replay. */
export function printStreams({ label, all, some, replay, latency, changes, captured }) {
  const delivered = [all, some].flatMap((e) => deliveredOnce(e.receipts));
  const attempts = all.receipts.length + some.receipts.length;
  const firstCreated = Math.min(...[...all.stored, ...some.stored].map((m) => Date.parse(m.created_at)));
  const lastDelivered = Math.max(...delivered.map((r) => r.at));
  const spanS = (lastDelivered - firstCreated) / 1000;
  const failedFirst = all.receipts.filter((r) => !r.ok).length;
  const changeCount = [...changes.values()].reduce((n, list) => n + list.length, 0);
  console.log(`${label}streams: ${changeCount} status changes of ${changes.size} transactions (${captured.size} captured)
  * endpoint: ${deliveredOnce(all.receipts).length} messages, ${all.receipts.length} POSTs (${failedFirst} first attempts answered 503 by the sink, ${(FIRST_ATTEMPT_FAILURES * 100).toFixed(0)} % asked), ${deliveryProblems(all).twice} answered 2xx twice
  filtered endpoint (${some.events.join(", ")}): ${deliveredOnce(some.receipts).length} messages, ${some.receipts.length} POSTs, ${deliveryProblems(some).twice} answered 2xx twice
  ${delivered.length} messages delivered (${attempts} POSTs) from the first message created to the last delivered (${spanS.toFixed(1)} s): ${(delivered.length / spanS).toFixed(1)} messages/s (paced by the storm, not a ceiling)
${table(
  [
    { key: "what", title: "latency", left: true },
    { key: "n", title: "messages" },
    { key: "p50", title: "p50" },
    { key: "p99", title: "p99" },
    { key: "max", title: "max" },
  ],
  latency,
)}
${
  replay
    ? `  replay of the * endpoint's messages created in [${replay.since}, ${replay.until}): ${replay.expected.length} in the range, dry run ${replay.dryRun.total}, replay ${replay.done.status} (${replay.done.sent} sent, ${replay.done.failed} failed) in ${(replay.ms / 1000).toFixed(1)} s, ${replay.resent.length} POSTs received`
    : "  replay: no messages to replay"
}
`);
}
