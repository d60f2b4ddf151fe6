// The local stack shared by `npm start`, `npm run demo` and `npm run chaos`: the Smart Router emulator, `wrangler dev`
// (local D1, Queues, Durable Objects), a merchant wired to an emulator project, the payment mix that drives it, and the
// comparison of the service's status API with the emulator's truth.
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildConsole } from "./build-console.mjs";
import { devVarsPath, ensureDevVars } from "./dev-vars.mjs";
import { readWranglerToml } from "./wrangler-config.mjs";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "node_modules", ".bin");
/** The worker with the chaos fault switch, for `wrangler dev` only (see startStack). */
const CHAOS_ENTRY = join(ROOT, "test", "entry", "chaos-worker.ts");
const WRANGLER = readWranglerToml();
/** Every D1 binding of wrangler.toml, in its order: each gets the migrations (as with `npm run db:migrate -- --local`). */
export const D1_BINDINGS = WRANGLER.d1Bindings;
/** The merchant shards among them (DB, DB_SHARD_1, …; src/db/shards.ts): the databases queryLocalD1 reads. */
export const D1_SHARDS = D1_BINDINGS.filter((binding) => /^DB(?:_SHARD_\d+)?$/.test(binding));
/** The Cron Trigger expressions of wrangler.toml (`[triggers] crons`). */
export const CRON_TRIGGERS = WRANGLER.crons;
const HOST = "127.0.0.1";
const PORT_RANGE = [8700, 8799];

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------------------------
// Processes

function portIsFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/** The preferred port if it is free, else the first free one in 8700-8799 (skipping `taken`). */
export async function freePort(preferred, taken = []) {
  if (!taken.includes(preferred) && (await portIsFree(preferred))) return preferred;
  for (let port = PORT_RANGE[0]; port <= PORT_RANGE[1]; port++) {
    if (port !== preferred && !taken.includes(port) && (await portIsFree(port))) return port;
  }
  throw new Error(`no free port in ${PORT_RANGE.join("-")}`);
}

const children = new Set();

/** Spawns a command in its own process group (so stopping it takes its children too), output appended to a log file. */
function spawnLogged(command, args, logFile, extraEnv = {}) {
  const fd = openSync(logFile, "a");
  const child = spawn(command, args, {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", fd, fd],
    env: {
      ...process.env,
      PATH: `${BIN}:${process.env.PATH}`,
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      WRANGLER_SEND_METRICS: "false",
      FORCE_COLOR: "0",
      ...extraEnv,
    },
  });
  closeSync(fd);
  child.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal)));
  children.add(child);
  child.exited.then(() => children.delete(child));
  return child;
}

function tail(logFile, lines = 25) {
  try {
    return readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * Runs a query against every local D1 shard with `wrangler d1 execute` (read-only use: counts for a report), one after
 * another; the rows of all shards together (a merchant's rows are on its shard alone).
 */
export async function queryLocalD1(stack, sql) {
  const rows = [];
  for (const shard of D1_SHARDS) rows.push(...(await queryLocalShard(stack, shard, sql)));
  return rows;
}

async function queryLocalShard(stack, shard, sql) {
  const child = spawn(join(BIN, "wrangler"), ["d1", "execute", shard, "--local", "--json", "--command", sql, ...stack.persistArgs], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PATH: `${BIN}:${process.env.PATH}`, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" },
  });
  let out = "";
  child.stdout.on("data", (chunk) => {
    out += chunk;
  });
  const code = await new Promise((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`wrangler d1 execute failed (${code}): ${out.slice(0, 500)}`);
  return JSON.parse(out)[0].results;
}

async function runToEnd(command, args, logFile) {
  const child = spawnLogged(command, args, logFile);
  const code = await child.exited;
  if (code !== 0) throw new Error(`${[command, ...args].join(" ")} failed (${code}); end of ${logFile}:\n${tail(logFile)}`);
}

/** SIGTERM to every process group we started, SIGKILL to whatever is still there after 5 s. */
export async function stopChildren() {
  const running = [...children];
  for (const child of running) signalGroup(child, "SIGTERM");
  const timedOut = await Promise.race([Promise.all(running.map((c) => c.exited)).then(() => false), sleep(5000).then(() => true)]);
  if (timedOut) for (const child of children) signalGroup(child, "SIGKILL");
}

function signalGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

let stopping = false;

/** Stops the children on Ctrl-C / SIGTERM, then exits; `cleanup` runs first (e.g. to stop timers). */
export function stopOnSignals(cleanup = () => {}) {
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${signal}: stopping the emulator and wrangler dev…\n`);
    cleanup();
    await stopChildren();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

/** Stops everything without exiting (a test runner's teardown): no child's exit then reads as a crash. */
export async function stopStack() {
  stopping = true;
  await stopChildren();
}

/** Stops everything and exits with `code`, after saying why. */
export async function shutDown(code, message) {
  if (stopping) return;
  stopping = true;
  if (message) console.error(message);
  await stopChildren();
  process.exit(code);
}

// ---------------------------------------------------------------------------------------------------------------------
// HTTP

/** One JSON request; answers `{status, body, headers}` and never throws on an HTTP error status. */
export async function http(url, { method, body, headers = {} } = {}) {
  const response = await fetch(url, {
    method: method ?? (body === undefined ? "GET" : "POST"),
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: response.status, body: json ?? text, headers: response.headers };
}

/** Like `http`, but throws unless the status is one of `ok`. */
export async function expectHttp(url, init = {}, ok = [200, 201, 202]) {
  const answer = await http(url, init);
  if (!ok.includes(answer.status)) {
    const what = `${init.method ?? (init.body === undefined ? "GET" : "POST")} ${url.replace(/\/\/[^@/]*@/, "//")}`;
    throw new Error(`${what} → ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
  }
  return answer.body;
}

async function waitFor(what, check, { timeoutMs, intervalMs = 250, abort }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const failure = abort && (await abort());
    if (failure) throw new Error(`${what}: ${failure}`);
    try {
      if (await check()) return;
    } catch {
      // Not up yet.
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${timeoutMs / 1000} s`);
    await sleep(intervalMs);
  }
}

/** The one mapConcurrent (src/lib/concurrency.ts), for the scripts too. */
export { mapConcurrent } from "../src/lib/concurrency.ts";

// ---------------------------------------------------------------------------------------------------------------------
// The stack

function readDevVars() {
  const vars = {};
  for (const line of readFileSync(devVarsPath, "utf8").split("\n")) {
    const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) vars[match[1]] = match[2].replace(/^(["'])(.*)\1$/, "$2");
  }
  return vars;
}

/**
 * Starts the emulator and `wrangler dev` (migrations applied first) and waits until both answer.
 * `name` names the log files; `persistTo` (a folder under .wrangler/) gives the run its own local state, wiped first.
 */
export async function startStack({
  name,
  port = 8787,
  sandboxPort = 8788,
  timeScale = 1,
  persistTo = null,
  frozen = false,
  vars = {},
  say = console.log,
}) {
  const logDir = join(ROOT, ".wrangler", "logs");
  mkdirSync(logDir, { recursive: true });
  const wranglerLog = join(logDir, `${name}-wrangler.log`);
  const sandboxLog = join(logDir, `${name}-sandbox.log`);
  rmSync(wranglerLog, { force: true });
  rmSync(sandboxLog, { force: true });

  const emulatorPort = await freePort(sandboxPort);
  const workerPort = await freePort(port, [emulatorPort]);
  if (workerPort !== port) say(`port ${port} is busy: the worker gets ${workerPort}`);
  const sandboxUrl = `http://${HOST}:${emulatorPort}`;
  const workerUrl = `http://${HOST}:${workerPort}`;

  const devVars = ensureDevVars({ sandboxUrl });
  say(devVars.created ? `created ${devVars.path} with fresh local secrets` : `secrets from ${devVars.path}`);
  const { ADMIN_TOKEN: adminToken } = readDevVars();
  if (!adminToken) throw new Error(`${devVarsPath} has no ADMIN_TOKEN; delete it to get a fresh one`);

  const persistArgs = [];
  if (persistTo) {
    const dir = join(ROOT, ".wrangler", persistTo);
    rmSync(dir, { recursive: true, force: true });
    persistArgs.push("--persist-to", dir);
  }

  // wrangler dev serves /console and /docs from the assets directory (wrangler.toml `[assets]`), which must exist first.
  say("building the console and /docs into dist/assets…");
  await buildConsole();

  say(`applying local D1 migrations to every D1 binding (${D1_BINDINGS.join(", ")})…`);
  for (const shard of D1_BINDINGS) {
    await runToEnd(join(BIN, "wrangler"), ["d1", "migrations", "apply", shard, "--local", ...persistArgs], wranglerLog);
  }

  // Asked for a consumer failure rate (`npm run chaos`), the stack serves the worker wrapped by the test-only entry module
  // that injects those failures; the production entry (wrangler.toml's `main`) has no fault switch.
  const entry = "CHAOS_CONSUMER_FAILURE_RATE" in vars ? CHAOS_ENTRY : null;
  // A frozen run serves the worker as bundled now: wrangler dev would otherwise reload it whenever a file under src/
  // changes mid-run, and the run would no longer test one version of the code.
  let entryArgs = entry ? [entry] : [];
  if (frozen) {
    const buildDir = join(ROOT, ".wrangler", `${name}-build`);
    say("bundling the worker once (edits to src/ during the run are not picked up)…");
    await runToEnd(join(BIN, "wrangler"), ["deploy", ...entryArgs, "--dry-run", "--outdir", buildDir], wranglerLog);
    // The bundle is named after its entry module.
    entryArgs = [join(buildDir, `${basename(entry ?? "src/index.ts", ".ts")}.js`), "--no-bundle"];
  }

  const node = existsSync(join(BIN, "node")) ? join(BIN, "node") : process.execPath;
  const emulator = spawnLogged(node, ["sandbox/server.ts", "--port", String(emulatorPort), "--time-scale", String(timeScale)], sandboxLog);
  // --var wins over .dev.vars: local runs reach the emulator even when .dev.vars names another URL (or none), and the
  // merchant's fulfilment URL may be the emulator's sink on the loopback (never allowed in wrangler.toml).
  const localVars = { SMART_ROUTER_API_URL: sandboxUrl, ALLOW_LOOPBACK_FULFILLMENT_URLS: "true", ...vars };
  const varArgs = Object.entries(localVars).flatMap(([key, value]) => ["--var", `${key}:${value}`]);
  const wrangler = spawnLogged(
    join(BIN, "wrangler"),
    ["dev", ...entryArgs, "--port", String(workerPort), "--ip", HOST, "--show-interactive-dev-session=false", ...varArgs, ...persistArgs],
    wranglerLog,
  );

  const exitedEarly = (child, log) => async () => (children.has(child) ? null : `exited early; end of ${log}:\n${tail(log)}`);
  await waitFor("the Smart Router emulator", async () => (await http(`${sandboxUrl}/_sandbox/health`)).status === 200, {
    timeoutMs: 30_000,
    abort: exitedEarly(emulator, sandboxLog),
  });
  say(`emulator up at ${sandboxUrl}; starting wrangler dev (log: ${wranglerLog})…`);
  await waitFor("wrangler dev", async () => (await http(`${workerUrl}/health/ready`)).status === 200, {
    timeoutMs: 120_000,
    abort: exitedEarly(wrangler, wranglerLog),
  });

  // A child that dies while the stack runs takes the whole run down, with its log's end.
  for (const [child, log] of [
    [emulator, sandboxLog],
    [wrangler, wranglerLog],
  ]) {
    child.exited.then((code) =>
      shutDown(1, `\n${child === emulator ? "the emulator" : "wrangler dev"} exited (${code}); end of ${log}:\n${tail(log)}`),
    );
  }

  const admin = { authorization: `Bearer ${adminToken}` };
  return {
    workerUrl,
    sandboxUrl,
    adminToken,
    wranglerLog,
    sandboxLog,
    persistArgs,
    admin: (path, init = {}, ok) => expectHttp(`${workerUrl}${path}`, { ...init, headers: { ...admin, ...init.headers } }, ok),
    sandbox: (path, init = {}, ok) => expectHttp(`${sandboxUrl}${path}`, init, ok),
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// A merchant and its Smart Router project

/** Rate limits high enough that pacing never dominates a scripted run (limits themselves are measured by `npm run bench`). */
export const FAST_RATES = { rates: { primary: 30_000, events: 30_000, sandbox: 30_000, burst: 200 } };
const FAST_MERCHANT_LIMITS = { primary_rpm: 30_000, events_rpm: 30_000, sandbox_rpm: 30_000 };

export const projectIdFor = (merchantId) => `test-proj_${merchantId.replace(/[^A-Za-z0-9]/g, "")}`;

/**
 * Wires a merchant to a fresh emulator project: the project (with `settings`), the merchant (created, or re-pointed when
 * `existing` carries its saved credentials), the webhook endpoint with the Basic credential in its URL, and a fulfilment sink.
 */
export async function openShop(stack, { merchantId, settings = {}, fast = false, existing = null }) {
  const projectId = existing?.project_id ?? projectIdFor(merchantId);
  const secretKey = existing?.secret_key ?? `sk_test_${crypto.randomUUID().replaceAll("-", "")}`;
  await stack.sandbox("/_sandbox/projects", {
    body: { project_id: projectId, secret_key: secretKey, ...(fast ? FAST_RATES : {}), ...settings },
  });
  const sinkUrl = `${stack.sandboxUrl}/_sandbox/sink/${merchantId}`;
  const smart_router = { project_id: projectId, secret_key: secretKey };

  let creds = existing;
  if (existing) {
    await stack.admin(`/admin/merchants/${merchantId}`, { method: "PATCH", body: { smart_router, fulfillment_url: sinkUrl } });
  } else {
    const created = await stack.admin("/admin/merchants", {
      body: { id: merchantId, name: `Demo shop ${merchantId}`, smart_router, fulfillment_url: sinkUrl },
    });
    creds = { merchant_id: merchantId, api_key: created.api_key, webhook: created.webhook, project_id: projectId, secret_key: secretKey };
  }
  if (fast) {
    await stack.admin(`/admin/merchants/${merchantId}`, { method: "PATCH", body: { rate_limits: FAST_MERCHANT_LIMITS } });
  }
  const { username, password, path } = creds.webhook;
  const host = new URL(stack.workerUrl).host;
  const webhookUrl = `http://${encodeURIComponent(username)}:${encodeURIComponent(password)}@${host}${path}`;
  await stack.sandbox(`/_sandbox/projects/${projectId}/webhooks`, { body: { url: webhookUrl } });

  const project = `/_sandbox/projects/${projectId}`;
  return {
    merchantId,
    projectId,
    creds,
    sinkUrl,
    pay: async (input) => (await stack.sandbox(`${project}/transactions`, { body: input })).transaction,
    transaction: async (id) => (await stack.sandbox(`${project}/transactions/${id}`)).transaction,
    act: (id, action, body = {}) => http(`${stack.sandboxUrl}${project}/transactions/${id}/${action}`, { body }),
    truth: () => stack.sandbox(`${project}/truth`),
    counters: () => stack.sandbox(`${project}/counters`),
    deliveries: async () => (await stack.sandbox(`${project}/deliveries`)).deliveries,
    settings: (patch) => stack.sandbox(project, { method: "PATCH", body: patch }),
    sink: async () => (await stack.sandbox(`/_sandbox/sink/${merchantId}`)).requests,
  };
}

/** Checks a webhook credential without changing anything: a right one gets past authentication to the body check (400). */
export async function webhookCredentialWorks(stack, webhook) {
  const basic = Buffer.from(`${webhook.username}:${webhook.password}`).toString("base64");
  const answer = await http(`${stack.workerUrl}${webhook.path}`, {
    method: "POST",
    body: {},
    headers: { authorization: `Basic ${basic}` },
  });
  return answer.status === 400;
}

// ---------------------------------------------------------------------------------------------------------------------
// The payment mix

const DECIMALS = { JPY: 0, KWD: 3 };
const CURRENCIES = ["EUR", "EUR", "USD", "GBP", "JPY", "KWD"];
const APMS = ["sandbox-apm", "ideal", "klarna", "bancontact"];

/** A small seeded generator (mulberry32), so a run can be repeated with `--seed`. */
export function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function money(random) {
  const currency = CURRENCIES[Math.floor(random() * CURRENCIES.length)];
  const decimals = DECIMALS[currency] ?? 2;
  const minor = decimals === 0 ? 100 + Math.floor(random() * 20_000) : Math.floor((1 + random() * 499) * 10 ** decimals);
  return { currency, decimals, minor };
}

const major = ({ decimals }, minor) => (minor / 10 ** decimals).toFixed(decimals);
/** A share of the payment's amount, at least one minor unit, in the currency's decimals. */
const share = (m, fraction) => major(m, Math.max(1, Math.floor(m.minor * fraction)));

const card = (number, extra = {}) => ({ card: number, ...extra });
const apm =
  (flow, outcome, extra = {}) =>
  (random) => ({ apm: APMS[Math.floor(random() * APMS.length)], flow, outcome, ...extra });
const step = (when, action, amount) => ({ when, action, amount });

/**
 * Every lifecycle the emulator knows (sandbox/README.md, smart-router.md §7): `method` is the payment's card or APM,
 * `steps` the merchant's later actions, each run once the payment reaches a status in `when`.
 */
export const SCENARIOS = [
  { name: "card paid", weight: 14, method: card("4242424242424242") },
  { name: "card 3-D Secure", weight: 4, method: card("4000000000000101") },
  { name: "card declined", weight: 6, method: card("4000000000000002") },
  { name: "card capture fails", weight: 3, method: card("4000000000000010") },
  { name: "card chargeback lost", weight: 2, method: card("4000000000000069") },
  { name: "card chargeback won", weight: 2, method: card("4000000000000200") },
  { name: "card retrieval request", weight: 2, method: card("4000000000000309") },
  { name: "card fraud notification", weight: 2, method: card("4000000000004004") },
  { name: "card fraud review, approved", weight: 2, method: card("4242424242424242", { review: "approve" }) },
  { name: "card fraud review, blocked", weight: 1, method: card("4242424242424242", { review: "block" }) },
  { name: "card refund declined", weight: 2, method: card("4000000000000077"), steps: [step(["completed"], "refund")] },
  { name: "manual capture", weight: 5, method: card("4242424242424242", { capture: "manual" }), steps: [step(["authorized"], "capture")] },
  {
    name: "manual partial capture",
    weight: 3,
    method: card("4242424242424242", { capture: "manual" }),
    steps: [step(["authorized"], "capture", 0.6)],
  },
  { name: "manual, left authorized", weight: 2, method: card("4242424242424242", { capture: "manual" }) },
  { name: "void", weight: 4, method: card("4242424242424242", { capture: "manual" }), steps: [step(["authorized"], "void")] },
  {
    name: "capture fails, then void",
    weight: 1,
    method: card("4000000000000010", { capture: "manual" }),
    steps: [step(["authorized"], "capture"), step(["failed"], "void")],
  },
  { name: "full refund", weight: 5, method: card("4242424242424242"), steps: [step(["completed"], "refund")] },
  { name: "partial refund", weight: 5, method: card("4242424242424242"), steps: [step(["completed"], "refund", 0.3)] },
  {
    name: "partial then full refund",
    weight: 3,
    method: card("4242424242424242"),
    steps: [step(["completed"], "refund", 0.4), step(["partially-refunded"], "refund")],
  },
  { name: "APM one-step", weight: 8, method: apm("one-step", "success") },
  { name: "APM one-step failed", weight: 4, method: apm("one-step", "failure") },
  { name: "APM two-step", weight: 5, method: apm("two-step", "success") },
  { name: "APM two-step failed", weight: 2, method: apm("two-step", "failure") },
  {
    name: "APM two-step manual capture",
    weight: 3,
    method: apm("two-step", "success", { capture: "manual" }),
    steps: [step(["authorized"], "capture")],
  },
  { name: "APM refund", weight: 3, method: apm("one-step", "success"), steps: [step(["completed"], "refund")] },
  { name: "APM partial refund", weight: 2, method: apm("one-step", "success"), steps: [step(["completed"], "refund", 0.5)] },
];

const TOTAL_WEIGHT = SCENARIOS.reduce((sum, s) => sum + s.weight, 0);

/** The scenario of the `index`-th payment: every scenario once first, then by weight. */
export function pickScenario(random, index = Number.POSITIVE_INFINITY) {
  if (index < SCENARIOS.length) return SCENARIOS[index];
  let roll = random() * TOTAL_WEIGHT;
  for (const scenario of SCENARIOS) {
    roll -= scenario.weight;
    if (roll < 0) return scenario;
  }
  return SCENARIOS[0];
}

/**
 * Creates one payment of `scenario` in the emulator; `done` settles when its merchant actions have run.
 * `pollMs` is how often the payment's status is read while an action waits for it.
 */
export async function makePayment(shop, scenario, { random, pollMs = 200, timeoutMs = 120_000 }) {
  const m = money(random);
  const method = typeof scenario.method === "function" ? scenario.method(random) : scenario.method;
  const tx = await shop.pay({
    amount: major(m, m.minor),
    currency: m.currency,
    name: scenario.name,
    metadata: { scenario: scenario.name },
    ...method,
  });
  const done = (async () => {
    let status = tx.status;
    for (const { when, action, amount } of scenario.steps ?? []) {
      const deadline = Date.now() + timeoutMs;
      while (!when.includes(status)) {
        if (Date.now() > deadline) throw new Error(`${tx.id} (${scenario.name}) never reached ${when.join("/")}; it is ${status}`);
        await sleep(pollMs);
        status = (await shop.transaction(tx.id)).status;
      }
      const answer = await shop.act(tx.id, action, amount === undefined ? {} : { amount: share(m, amount) });
      if (answer.status !== 200) throw new Error(`${action} ${tx.id} (${scenario.name}) → ${answer.status} ${JSON.stringify(answer.body)}`);
      status = answer.body.transaction.status;
    }
  })();
  return { tx, scenario, money: `${m.currency} ${major(m, m.minor)}`, done };
}

/**
 * Creates `count` payments at `perSecond` (the scenario of each by `pickScenario`) and runs their merchant actions;
 * resolves when every lifecycle has been driven, with the payments and any step that failed.
 */
export async function drivePayments(shop, { count, random, perSecond, pollMs, maxInFlight = 16, onProgress = () => {} }) {
  const payments = [];
  const failures = [];
  const running = [];
  let finished = 0;
  let next = Date.now();
  for (let index = 0; index < count; index++) {
    if (next > Date.now()) await sleep(next - Date.now());
    // Backpressure: the emulator sends each delivery the moment it is due, without bound, and wrangler dev serves only
    // some tens of webhooks per second here; beyond that, deliveries time out and retry in a storm.
    if (index % 5 === 0) {
      while ((await shop.counters()).backlog.in_flight > maxInFlight) await sleep(100);
    }
    next = Math.max(next, Date.now() - 1000) + 1000 / perSecond;
    const lifecycle = makePayment(shop, pickScenario(random, index), { random, pollMs })
      .then((payment) => {
        payments.push(payment);
        return payment.done;
      })
      .catch((error) => failures.push(error.message))
      .finally(() => onProgress(++finished, count));
    running.push(lifecycle);
  }
  await Promise.all(running);
  return { payments, failures };
}

// ---------------------------------------------------------------------------------------------------------------------
// Settling and comparing

/** The emulator's project is quiet: nothing parked, claimed, in flight or waiting on a timer (twice in a row). */
export async function waitForQuiet(shop, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let quietOnce = false;
  for (;;) {
    const { backlog } = await shop.counters();
    const quiet = backlog.parked === 0 && backlog.claimed === 0 && backlog.in_flight === 0 && backlog.timers === 0;
    if (quiet && quietOnce) return true;
    quietOnce = quiet;
    if (Date.now() > deadline) return false;
    await sleep(500);
  }
}

/** Calls the status API with a pool of API keys (rate limited per key), waiting out any 429. */
export function statusApi(stack, apiKeys) {
  let turn = 0;
  return async (path, init = {}) => {
    for (;;) {
      const key = apiKeys[turn++ % apiKeys.length];
      const answer = await http(`${stack.workerUrl}${path}`, { ...init, headers: { authorization: `Bearer ${key}` } });
      if (answer.status !== 429) return answer;
      await sleep(1000 * Number(answer.headers.get("retry-after") ?? 1));
    }
  };
}

/** Every transaction the service has for the merchant, through the paginated list. */
export async function listServiceTransactions(status) {
  const found = new Map();
  let cursor = null;
  do {
    const answer = await status(`/v1/transactions?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    if (answer.status !== 200) throw new Error(`GET /v1/transactions → ${answer.status} ${JSON.stringify(answer.body)}`);
    for (const tx of answer.body.transactions) found.set(tx.id, tx);
    cursor = answer.body.next_cursor;
  } while (cursor);
  return found;
}

const COMPARED_FIELDS = ["status", "currency", "amount", "authorized_amount", "captured_amount", "refunded_amount", "available_amount"];

/** The fields where the service's record differs from the truth (`["missing"]` when it has none). */
function differences(truth, record) {
  if (!record) return ["missing"];
  return COMPARED_FIELDS.filter((field) => String(truth[field]) !== String(record[field]));
}

/** Compares the truth with the service's records: counts per final status, and the differing transactions. */
export function compareAll(truthTransactions, records) {
  const byStatus = new Map();
  const wrong = [];
  for (const truth of truthTransactions) {
    const diff = differences(truth, records.get(truth.id));
    const row = byStatus.get(truth.status) ?? { status: truth.status, truth: 0, matching: 0, mismatched: 0, missing: 0 };
    row.truth++;
    if (diff.length === 0) row.matching++;
    else if (diff[0] === "missing") row.missing++;
    else row.mismatched++;
    byStatus.set(truth.status, row);
    if (diff.length > 0) wrong.push({ truth, record: records.get(truth.id), diff });
  }
  const rows = [...byStatus.values()].sort((a, b) => b.truth - a.truth);
  return { rows, wrong };
}

/** Polls the list endpoint until every transaction of the truth matches, or the time is up. */
export async function waitForMatch(status, truthTransactions, timeoutMs, onProgress = () => {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const comparison = compareAll(truthTransactions, await listServiceTransactions(status));
    onProgress(truthTransactions.length - comparison.wrong.length, truthTransactions.length);
    if (comparison.wrong.length === 0 || Date.now() > deadline) return comparison;
    await sleep(1000);
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Output

/** A plain text table. */
export function table(columns, rows) {
  const widths = columns.map((c) => Math.max(c.title.length, ...rows.map((r) => String(r[c.key]).length)));
  const line = (cells) => cells.map((cell, i) => (columns[i].left ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ");
  return [
    line(columns.map((c) => c.title)),
    widths.map((w) => "─".repeat(w)).join("  "),
    ...rows.map((r) => line(columns.map((c) => String(r[c.key])))),
  ].join("\n");
}

/** A text progress bar on stderr (one line, redrawn); on a non-terminal, a line every 10%. */
export function progressBar(label) {
  let lastDecile = -1;
  return (done, total, note = "") => {
    const ratio = total === 0 ? 1 : done / total;
    if (process.stderr.isTTY) {
      const width = 30;
      const filled = Math.round(ratio * width);
      process.stderr.write(`\r${label} [${"█".repeat(filled)}${"░".repeat(width - filled)}] ${done}/${total} ${note}\x1b[K`);
      if (done >= total) process.stderr.write("\n");
    } else if (Math.floor(ratio * 10) > lastDecile) {
      lastDecile = Math.floor(ratio * 10);
      process.stderr.write(`${label} ${done}/${total} ${note}\n`);
    }
  };
}
