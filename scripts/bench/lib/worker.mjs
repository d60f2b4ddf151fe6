// The real worker, bundled exactly as `wrangler deploy` would upload it, served by workerd through Miniflare's API
// (no `wrangler dev` proxy in front). Bindings come from wrangler.toml; secrets are fresh random values per run
// (.dev.vars is never read).
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { buildSync } from "esbuild";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { unstable_readConfig } from "wrangler";
import { d1Files } from "./d1-bytes.mjs";

export const ROOT = path.resolve(import.meta.dirname, "../../..");
/**
 * Host name the worker's outbound Smart Router calls go to; Miniflare's outboundService catches them. https because
 * src/env.ts refuses plain http to a non-loopback host.
 */
export const SANDBOX_ORIGIN = "https://smart-router.sandbox";

/**
 * Entry module of the instrumented build: the unchanged bundle, with every D1 shard wrapped in a counting proxy, and
 * `/__bench/d1` to read (GET) or reset (POST) the counters: queries, batches, and D1's `meta.rows_written` per table
 * written (from batch, `run` and `all` results; `first` and `raw` answer no meta). Used by the consumer and outbox sections.
 */
const COUNTING_ENTRY = `
import worker from "./index.js";
export * from "./index.js";

const zero = () => ({ queries: 0, batches: 0, batchStatements: 0, rowsWritten: 0, rowsWrittenByTable: {} });
const counters = zero();
const realStatement = new WeakMap();
const sqlOf = new WeakMap();

/** The table a write statement writes (its first INSERT INTO / UPDATE / DELETE FROM), else "read". */
function tableOf(sql) {
  const match = /\\b(?:insert\\s+(?:or\\s+\\w+\\s+)?into|update|delete\\s+from)\\s+["\\x60]?(\\w+)/i.exec(sql ?? "");
  return match ? match[1] : "read";
}

/** D1's own count of the rows a statement wrote (index entries included), by table; only results that carry meta. */
function countWritten(statement, result) {
  const written = result?.meta?.rows_written ?? 0;
  counters.rowsWritten += written;
  const table = tableOf(sqlOf.get(statement));
  counters.rowsWrittenByTable[table] = (counters.rowsWrittenByTable[table] ?? 0) + written;
}

function countStatement(statement, sql) {
  const proxy = new Proxy(statement, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      if (key === "bind") return (...args) => countStatement(value.apply(target, args), sql);
      if (key === "all" || key === "run") {
        return async (...args) => {
          counters.queries += 1;
          const result = await value.apply(target, args);
          countWritten(proxy, result);
          return result;
        };
      }
      if (key === "first" || key === "raw") {
        return (...args) => {
          counters.queries += 1;
          return value.apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
  realStatement.set(proxy, statement);
  sqlOf.set(proxy, sql);
  return proxy;
}

function countDatabase(db) {
  return new Proxy(db, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      if (key === "prepare") return (...args) => countStatement(value.apply(target, args), args[0]);
      if (key === "batch") {
        return async (statements) => {
          counters.batches += 1;
          counters.batchStatements += statements.length;
          const results = await value.call(target, statements.map((s) => realStatement.get(s) ?? s));
          results.forEach((result, i) => countWritten(statements[i], result));
          return results;
        };
      }
      if (key === "exec" || key === "withSession") throw new Error("bench: D1 " + String(key) + " is not counted");
      return value.bind(target);
    },
  });
}

const wrapped = new WeakMap();
function benchEnv(env) {
  let result = wrapped.get(env);
  if (!result) {
    // Every D1 shard (DB, DB_SHARD_1, …; src/db/shards.ts) is counted.
    result = { ...env };
    for (const key of Object.keys(env)) if (/^DB(_SHARD_\\d+)?$/.test(key)) result[key] = countDatabase(env[key]);
    wrapped.set(env, result);
  }
  return result;
}

export default {
  async fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "/__bench/d1") {
      const snapshot = { ...counters };
      if (request.method === "POST") Object.assign(counters, zero());
      return Response.json(snapshot);
    }
    return worker.fetch(request, benchEnv(env), ctx);
  },
  async queue(batch, env, ctx) {
    try {
      return await worker.queue(batch, benchEnv(env), ctx);
    } catch (error) {
      console.error("bench: the queue handler threw: " + (error && error.stack ? error.stack : String(error)));
      throw error;
    }
  },
  scheduled: (controller, env, ctx) => worker.scheduled(controller, benchEnv(env), ctx),
};
`;

/**
 * The gate of a merchant whose consumer keeps up, for the ingest section: the real DeliveryGate is asked (its Durable
 * Object call is in the figures), and a `park` verdict is taken as `queue`. The section's one merchant has no consumer,
 * so past 200 deliveries (QUEUE_SHARE) it is a flood and the edge would park every delivery in D1; the section measures
 * the path of every merchant not flooding, the queue.
 */
const KEEPING_UP = `
function keepingUp(namespace) {
  return new Proxy(namespace, {
    get(target, key) {
      const value = Reflect.get(target, key);
      if (key !== "get") return typeof value === "function" ? value.bind(target) : value;
      return (id) => {
        const stub = target.get(id);
        return {
          admit: async (limit, receivedAt) => {
            const admission = await stub.admit(limit, receivedAt);
            return admission === "park" ? "queue" : admission;
          },
          settle: (counts) => stub.settle(counts),
          backlog: () => stub.backlog(),
        };
      };
    },
  });
}
`;

/**
 * Entry module for the ingest breakdown: the unchanged bundle with `env.WEBHOOKS` replaced by an in-memory queue, the
 * ceiling's enqueue, so the difference to the real worker is the local Queues emulation alone.
 */
const MEMORY_QUEUE_ENTRY = `
import worker from "./index.js";
export * from "./index.js";
${KEEPING_UP}

const held = [];
const memoryQueue = {
  async send(body) {
    if (held.length >= 100000) held.length = 0;
    held.push(body);
    return {};
  },
  async sendBatch(messages) {
    for (const message of messages) await memoryQueue.send(message.body);
    return {};
  },
};

const wrapped = new WeakMap();
function benchEnv(env) {
  let result = wrapped.get(env);
  if (!result) {
    result = { ...env, WEBHOOKS: memoryQueue, DELIVERY_GATE: keepingUp(env.DELIVERY_GATE) };
    wrapped.set(env, result);
  }
  return result;
}

export default {
  fetch: (request, env, ctx) => worker.fetch(request, benchEnv(env), ctx),
};
`;

/** An entry module around `target` (a bundle file) whose env has the keeping-up gate. */
const keepingUpEntry = (target) => `
import worker from "./${target}";
export * from "./${target}";
${KEEPING_UP}
const wrapped = new WeakMap();
function benchEnv(env) {
  let result = wrapped.get(env);
  if (!result) {
    result = { ...env, DELIVERY_GATE: keepingUp(env.DELIVERY_GATE) };
    wrapped.set(env, result);
  }
  return result;
}

export default {
  fetch: (request, env, ctx) => worker.fetch(request, benchEnv(env), ctx),
};
`;

/**
 * Entry module of the soak (scripts/soak.mjs): the unchanged bundle, with the WEBHOOKS and BATCHES producers recording
 * every message sent (body and delay) before passing it on to the real queue, which has no consumer in the soak; and
 * `POST /__bench/sent?queue=WEBHOOKS|BATCHES` answering (and forgetting) what that queue was sent. The soak hands them to
 * the queue handler itself when their delay is over: deliveries the consumer put back for later (a write that met a
 * moving merchant's fence, a re-check), and the steps of a merchant move.
 */
const CAPTURING_ENTRY = `
import worker from "./index.js";
export * from "./index.js";

const sent = { WEBHOOKS: [], BATCHES: [] };

function capturing(queue, name) {
  return {
    async send(body, options) {
      sent[name].push({ body, delaySeconds: options?.delaySeconds ?? 0 });
      return queue.send(body, options);
    },
    async sendBatch(messages, options) {
      for (const message of messages) sent[name].push({ body: message.body, delaySeconds: message.delaySeconds ?? options?.delaySeconds ?? 0 });
      return queue.sendBatch(messages, options);
    },
  };
}

const wrapped = new WeakMap();
function benchEnv(env) {
  let result = wrapped.get(env);
  if (!result) {
    result = { ...env, WEBHOOKS: capturing(env.WEBHOOKS, "WEBHOOKS"), BATCHES: capturing(env.BATCHES, "BATCHES") };
    wrapped.set(env, result);
  }
  return result;
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/__bench/sent" && request.method === "POST") {
      const name = url.searchParams.get("queue");
      if (!(name in sent)) return new Response("unknown queue", { status: 400 });
      return Response.json(sent[name].splice(0));
    }
    return worker.fetch(request, benchEnv(env), ctx);
  },
  queue: (batch, env, ctx) => worker.queue(batch, benchEnv(env), ctx),
  scheduled: (controller, env, ctx) => worker.scheduled(controller, benchEnv(env), ctx),
};
`;

/** Bundles src/ with `wrangler deploy --dry-run` into a temporary directory. */
export function buildWorker() {
  const outdir = mkdtempSync(path.join(tmpdir(), "sre-bench-"));
  const started = performance.now();
  const result = spawnSync(
    path.join(ROOT, "node_modules/.bin/wrangler"),
    ["deploy", "--dry-run", "--outdir", outdir, "--config", path.join(ROOT, "wrangler.toml")],
    {
      cwd: ROOT,
      encoding: "utf8",
      env: {
        ...process.env,
        PATH: `${path.join(ROOT, "node_modules/.bin")}${path.delimiter}${process.env.PATH}`,
        CLOUDFLARE_CF_FETCH_ENABLED: "false",
        WRANGLER_SEND_METRICS: "false",
      },
      timeout: 120_000,
    },
  );
  if (result.status !== 0) {
    throw new Error(`wrangler deploy --dry-run failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
  const upload = /Total Upload: ([^\n]+)/.exec(result.stdout)?.[1]?.trim() ?? "?";
  writeFileSync(path.join(outdir, "bench-counting.mjs"), COUNTING_ENTRY);
  writeFileSync(path.join(outdir, "bench-memory-queue.mjs"), MEMORY_QUEUE_ENTRY);
  writeFileSync(path.join(outdir, "bench-capturing.mjs"), CAPTURING_ENTRY);
  writeFileSync(path.join(outdir, "bench-keeping-up.mjs"), keepingUpEntry("index.js"));
  writeFileSync(path.join(outdir, "bench-plain-keeping-up.mjs"), keepingUpEntry("bench-plain.mjs"));
  // The metered entry of the cost section: every binding the bill depends on counted, per phase (meter-entry.mjs).
  copyFileSync(path.join(import.meta.dirname, "meter-entry.mjs"), path.join(outdir, "bench-meter.mjs"));
  // The framework-free baseline (plain-edge.mjs) around the same bundle: it imports ./index.js for the admin API only.
  buildSync({
    entryPoints: [path.join(import.meta.dirname, "plain-edge.mjs")],
    bundle: true,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker"],
    external: ["./index.js"],
    outfile: path.join(outdir, "bench-plain.mjs"),
    logLevel: "error",
  });
  return {
    outdir,
    upload,
    buildMs: performance.now() - started,
    cleanup: () => rmSync(outdir, { recursive: true, force: true }),
  };
}

/**
 * What Workers Logs and traces record, from wrangler.toml's [observability] (the cost section prices those events):
 * the share of invocations sampled for logs and for traces, and whether each invocation writes its own log.
 */
export function observabilityFromWranglerToml() {
  const { observability } = unstable_readConfig({ config: path.join(ROOT, "wrangler.toml") }, { hideWarnings: true });
  const on = observability?.enabled === true;
  const logs = observability?.logs;
  const traces = observability?.traces;
  return {
    logSampling: on && logs?.enabled !== false ? (logs?.head_sampling_rate ?? observability?.head_sampling_rate ?? 1) : 0,
    invocationLogs: logs?.invocation_logs !== false,
    traceSampling: on && traces?.enabled === true ? (traces.head_sampling_rate ?? 1) : 0,
  };
}

/** Miniflare (v4-style) binding options derived from wrangler.toml. */
function bindingsFromWranglerToml() {
  const config = unstable_readConfig({ config: path.join(ROOT, "wrangler.toml") }, { hideWarnings: true });
  const sqliteClasses = new Set(config.migrations.flatMap((m) => m.new_sqlite_classes ?? []));
  return {
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags,
    vars: Object.fromEntries(Object.entries(config.vars ?? {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])),
    d1Databases: Object.fromEntries(config.d1_databases.map((d) => [d.binding, d.database_id ?? d.database_name])),
    r2Buckets: Object.fromEntries((config.r2_buckets ?? []).map((b) => [b.binding, b.bucket_name])),
    queueProducers: Object.fromEntries((config.queues.producers ?? []).map((p) => [p.binding, { queueName: p.queue }])),
    durableObjects: Object.fromEntries(
      config.durable_objects.bindings.map((b) => [b.name, { className: b.class_name, useSQLite: sqliteClasses.has(b.class_name) }]),
    ),
    ratelimits: Object.fromEntries(config.ratelimits.map((r) => [r.name, { namespace_id: r.namespace_id, simple: r.simple }])),
    queueConsumers: Object.fromEntries(
      (config.queues.consumers ?? []).map((c) => [
        c.queue,
        {
          maxBatchSize: c.max_batch_size,
          maxBatchTimeout: c.max_batch_timeout,
          maxRetries: c.max_retries,
          ...(c.dead_letter_queue ? { deadLetterQueue: c.dead_letter_queue } : {}),
        },
      ]),
    ),
  };
}

/**
 * D1 bindings for `count` shards: wrangler.toml's `DB`, then `DB_SHARD_1` … `DB_SHARD_{count-1}` (wrangler.toml's id
 * where it lists that shard, else a local one), in place of whatever shards wrangler.toml lists.
 */
function shardDatabases(fromToml, count) {
  const shards = { DB: fromToml.DB };
  for (let i = 1; i < count; i++) shards[`DB_SHARD_${i}`] = fromToml[`DB_SHARD_${i}`] ?? `${fromToml.DB}-shard-${i}`;
  const others = Object.entries(fromToml).filter(([binding]) => !/^DB(_SHARD_\d+)?$/.test(binding));
  return { ...shards, ...Object.fromEntries(others) };
}

/** D1 bindings in shard order: `DB`, `DB_SHARD_1`, `DB_SHARD_2`, …, then any other. */
const shardOrder = (binding) => (binding === "DB" ? 0 : Number(/^DB_SHARD_(\d+)$/.exec(binding)?.[1] ?? Number.MAX_SAFE_INTEGER));

/** Drizzle migrations split at their statement breakpoints, in file order. */
function migrationStatements() {
  const dir = path.join(ROOT, "migrations");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort()
    .flatMap((f) =>
      readFileSync(path.join(dir, f), "utf8")
        .split("--> statement-breakpoint")
        .map((s) => s.trim())
        .filter(Boolean),
    );
}

/**
 * Starts workerd with the bundled worker on 127.0.0.1 (a free port), applies the migrations and returns helpers.
 * `counting` loads the instrumented entry (D1 counters), `metered` the cost section's (meter-entry.mjs), `memoryQueue`
 * the one with an in-memory WEBHOOKS queue (and the keeping-up gate), `capturing` the soak's (CAPTURING_ENTRY); `keepUp` (with or without `plain`) the keeping-up
 * gate (KEEPING_UP); `queueConsumers` attaches wrangler.toml's queue consumers (else none);
 * `outbound` receives every outbound fetch of the worker; `d1Shards` (a count) binds that many D1 databases (`DB`,
 * `DB_SHARD_1`, …) instead of wrangler.toml's; `onLog(level, message)` sees each of the worker's log lines. Every D1
 * database gets the migrations.
 */
export async function startWorker(
  build,
  {
    counting = false,
    metered = false,
    memoryQueue = false,
    capturing = false,
    plain = false,
    keepUp = false,
    queueConsumers = false,
    outbound,
    inspectorPort,
    d1Shards,
    onLog,
  } = {},
) {
  const fromToml = bindingsFromWranglerToml();
  const secrets = {
    ADMIN_TOKEN: randomBytes(24).toString("base64url"),
    SECRETS_KEY: randomBytes(32).toString("base64"),
  };
  const logs = { lines: 0, warnings: 0, errors: [], recent: [] };
  // Local D1, queues and Durable Objects are SQLite files; on tmpfs their per-commit syncs don't measure the disk.
  const persist = mkdtempSync(path.join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "sre-bench-state-"));
  const entry = counting
    ? "bench-counting.mjs"
    : metered
      ? "bench-meter.mjs"
      : memoryQueue
        ? "bench-memory-queue.mjs"
        : capturing
          ? "bench-capturing.mjs"
          : plain
            ? keepUp
              ? "bench-plain-keeping-up.mjs"
              : "bench-plain.mjs"
            : keepUp
              ? "bench-keeping-up.mjs"
              : "index.js";
  const modules = [{ type: "ESModule", path: path.join(build.outdir, entry) }];
  if (entry === "bench-plain-keeping-up.mjs") modules.push({ type: "ESModule", path: path.join(build.outdir, "bench-plain.mjs") });
  if (entry !== "index.js") modules.push({ type: "ESModule", path: path.join(build.outdir, "index.js") });
  const options = {
    host: "127.0.0.1",
    port: 0,
    resourcePersistencePath: persist,
    modulesRoot: build.outdir,
    modules,
    compatibilityDate: fromToml.compatibilityDate,
    compatibilityFlags: fromToml.compatibilityFlags,
    bindings: { ...fromToml.vars, ...secrets, SMART_ROUTER_API_URL: SANDBOX_ORIGIN },
    d1Databases: d1Shards ? shardDatabases(fromToml.d1Databases, d1Shards) : fromToml.d1Databases,
    r2Buckets: fromToml.r2Buckets,
    queueProducers: fromToml.queueProducers,
    // No queue consumers unless asked: sections drive the queue handler themselves (or, for ingest, keep it idle).
    ...(queueConsumers ? { queueConsumers: fromToml.queueConsumers } : {}),
    durableObjects: fromToml.durableObjects,
    // The per-merchant edge limit still runs on every delivery, but so high that the ingest load (one merchant, thousands
    // a second) measures the edge's work, not its 429s.
    ratelimits: {
      ...fromToml.ratelimits,
      WEBHOOK_LIMITER: { ...fromToml.ratelimits.WEBHOOK_LIMITER, simple: { limit: 1_000_000_000, period: 60 } },
    },
    // workerd's own HTTP socket straight into the worker, without Miniflare's entry worker in front.
    unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
    // For profiling the isolate over the DevTools protocol (scripts/bench/profile-ingest.mjs).
    ...(inspectorPort ? { inspectorPort } : {}),
    outboundService: outbound ?? (async (request) => new Response(`bench: unexpected outbound ${request.url}`, { status: 502 })),
    // Keep the worker's structured log lines off the bench's output; count them (and warnings), keep the first few errors.
    handleStructuredLogs: (log) => {
      logs.lines += 1;
      if (log.level === "warn") logs.warnings += 1;
      if (log.level === "error" && logs.errors.length < 5) logs.errors.push(String(log.message).slice(0, 300));
      logs.recent.push(`${log.level}: ${String(log.message).slice(0, 300)}`);
      onLog?.(log.level, String(log.message));
      if (logs.recent.length > 10) logs.recent.shift();
    },
  };
  const mf = new Miniflare(convertV4MiniflareOptions(options));
  await mf.ready;
  const url = await mf.unsafeGetDirectURL();
  const statements = migrationStatements();
  // Miniflare creates a database's SQLite file on its first query: the file that appears while one is migrated is its own.
  const databases = [];
  for (const binding of Object.keys(options.d1Databases).sort((a, b) => shardOrder(a) - shardOrder(b))) {
    const before = new Set(d1Files(persist));
    const db = await mf.getD1Database(binding);
    await db.batch(statements.map((sql) => db.prepare(sql)));
    databases.push({ binding, db, file: d1Files(persist).find((file) => !before.has(file)) ?? null });
  }
  const d1 = databases.find((database) => database.binding === "DB").db;
  // Every shard carries the whole schema (src/db/shards.ts); the handles in shard order.
  const shards = databases.map((database) => database.db);
  /** The D1 shard holding a merchant (DB for one the directory does not know, as the worker does). */
  const d1For = async (merchantId) => {
    const row = await d1.prepare("SELECT shard FROM merchant_shards WHERE merchant_id = ?").bind(merchantId).first();
    return shards[row?.shard ?? 0];
  };

  const call = async (pathname, { method = "GET", body, headers = {} } = {}) => {
    const response = await fetch(new URL(pathname, url), {
      method,
      headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : null, text };
  };
  const admin = async (pathname, init = {}) => {
    const result = await call(pathname, { ...init, headers: { authorization: `Bearer ${secrets.ADMIN_TOKEN}` } });
    if (result.status >= 300) throw new Error(`admin ${init.method ?? "GET"} ${pathname}: ${result.status} ${result.text}`);
    return result.json;
  };

  return {
    mf,
    url,
    d1,
    shards,
    d1For,
    /** Every D1 database in shard order (`DB` first): binding, D1 handle, and its SQLite file under `persist`. */
    databases,
    logs,
    migrations: statements.length,
    /** Where Miniflare keeps D1, queues, R2 and Durable Objects (SQLite files), removed by dispose(). */
    persist,
    call,
    admin,
    /** Registers a merchant through the admin API; answers its credentials (shown once). */
    /** Registers a merchant; `rateLimits` (the admin PATCH's `rate_limits`) are set right after when given. */
    createMerchant: async (id, projectId, secretKey, { rateLimits } = {}) => {
      const created = await admin("/admin/merchants", {
        method: "POST",
        body: { id, name: `Bench ${id}`, smart_router: { project_id: projectId, secret_key: secretKey } },
      });
      if (rateLimits) await admin(`/admin/merchants/${id}`, { method: "PATCH", body: { rate_limits: rateLimits } });
      return created;
    },
    worker: () => mf.getWorker(),
    dispose: async () => {
      await mf.dispose();
      rmSync(persist, { recursive: true, force: true });
    },
  };
}
