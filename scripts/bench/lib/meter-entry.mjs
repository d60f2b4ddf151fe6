// Entry module of the metered build (the cost section, scripts/bench/cost.mjs): the unchanged bundle (./index.js, copied
// next to this file by buildWorker) with every binding the bill depends on wrapped in a counter, per phase of the
// pipeline (the edge, each queue's consumer, the Cron Trigger, the admin API):
// - D1: rows read and rows written from each statement's `meta` (single queries and every statement of a batch);
// - Queues: messages sent (and the 64 KB operations they make), read, acked and retried;
// - Durable Objects: RPC calls per stub method (each one a billed request), and the rate limiter's own storage calls;
// - R2: operations by method; Worker invocations by phase; log lines by phase.
// GET /__bench/meter answers the counters, POST /__bench/meter answers and resets them.
import { AsyncLocalStorage } from "node:async_hooks";
import worker, { DeliveryGate as BundledDeliveryGate, ProjectRateLimiter as BundledRateLimiter } from "./index.js";

export * from "./index.js";

/** Cloudflare bills queue operations per 64 KB of a message. */
const QUEUE_OP_BYTES = 64 * 1024;
/** Statements that change rows: answered by `all()` (which carries `meta`) when drizzle asks for `raw()`. */
const WRITE_SQL = /^\s*(insert|update|delete|replace)\b/i;

const phaseOf = new AsyncLocalStorage();
let meter = newMeter();

/** The entry of `object` under `key`, made by `make` the first time. */
function slot(object, key, make) {
  if (!(key in object)) object[key] = make();
  return object[key];
}

function newMeter() {
  return { since: Date.now(), phases: {}, durableObjectStorage: {} };
}

function phase(name) {
  meter.phases[name] ??= {
    invocations: 0,
    failedInvocations: 0,
    logLines: 0,
    d1: { calls: 0, statements: 0, rowsRead: 0, rowsWritten: 0, byStatement: {} },
    queueSends: {},
    queueReads: {},
    durableObjects: {},
    r2: {},
  };
  return meter.phases[name];
}

// ---- D1 ----

/** `verb table` of a statement (and the columns an UPDATE sets), the key its rows are summed under. */
function statementKey(sql) {
  const text = sql.replace(/\s+/g, " ").trim();
  const write = /^(insert(?: or \w+)? into|update|delete from|replace into) "?([\w]+)"?/i.exec(text);
  if (write) {
    const verb = write[1].split(" ")[0].toLowerCase();
    const set =
      verb === "update"
        ? /\bset (.*?)(?: where | returning |$)/i.exec(text)?.[1]
        : /\bdo update set (.*?)(?: where | returning |$)/i.exec(text)?.[1];
    const columns = set ? [...set.matchAll(/"?(\w+)"?\s*=/g)].map((m) => m[1]).sort() : [];
    return `${verb} ${write[2]}${columns.length > 0 ? ` set ${columns.join(",")}` : ""}`;
  }
  const from = /\bfrom "?(\w+)"?/i.exec(text);
  return `select ${from ? from[1] : "?"}`;
}

function recordStatement(sink, sql, meta) {
  const rowsRead = meta?.rows_read ?? 0;
  const rowsWritten = meta?.rows_written ?? 0;
  sink.d1.statements += 1;
  sink.d1.rowsRead += rowsRead;
  sink.d1.rowsWritten += rowsWritten;
  const key = statementKey(sql);
  const entry = slot(sink.d1.byStatement, key, () => ({ statements: 0, changes: 0, rowsRead: 0, rowsWritten: 0 }));
  entry.statements += 1;
  entry.changes += meta?.changes ?? 0;
  entry.rowsRead += rowsRead;
  entry.rowsWritten += rowsWritten;
}

const statementOf = new WeakMap();

function meterStatement(statement, sql, sink) {
  const proxy = new Proxy(statement, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      if (key === "bind") return (...args) => meterStatement(Reflect.apply(value, target, args), sql, sink);
      if (key === "all" || key === "run") {
        return async (...args) => {
          sink.d1.calls += 1;
          const result = await Reflect.apply(value, target, args);
          recordStatement(sink, sql, result.meta);
          return result;
        };
      }
      // first() and raw() answer no meta: the same statement is answered through all(), which does.
      if (key === "first") {
        return async (column) => {
          sink.d1.calls += 1;
          const result = await target.all();
          recordStatement(sink, sql, result.meta);
          const row = result.results[0] ?? null;
          return column === undefined || row === null ? row : row[column];
        };
      }
      if (key === "raw") return (options) => meteredRaw(target, value, options, sql, sink);
      return value.bind(target);
    },
  });
  statementOf.set(proxy, { statement, sql });
  return proxy;
}

/**
 * raw() with the statement's meta: a write (its RETURNING columns come from one table, so names are unique) is run once
 * through all() and its rows turned into arrays; a read is answered by raw() itself, then run once more through all()
 * for its meta (a read has no effect; the second run's rows read are the ones counted).
 */
async function meteredRaw(target, raw, options, sql, sink) {
  sink.d1.calls += 1;
  if (WRITE_SQL.test(sql)) {
    const result = await target.all();
    recordStatement(sink, sql, result.meta);
    const rows = result.results.map((row) => Object.values(row));
    return options?.columnNames ? [Object.keys(result.results[0] ?? {}), ...rows] : rows;
  }
  const rows = await raw.call(target, options);
  const result = await target.all();
  recordStatement(sink, sql, result.meta);
  return rows;
}

function meterDatabase(db, sink) {
  return new Proxy(db, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      if (key === "prepare") return (sql) => meterStatement(value.call(target, sql), sql, sink);
      if (key === "batch") {
        return async (statements) => {
          sink.d1.calls += 1;
          const real = statements.map((s) => statementOf.get(s) ?? { statement: s, sql: "?" });
          const results = await value.call(
            target,
            real.map((s) => s.statement),
          );
          for (const [index, result] of results.entries()) recordStatement(sink, real[index].sql, result.meta);
          return results;
        };
      }
      if (key === "exec" || key === "withSession") throw new Error(`bench: D1 ${String(key)} is not metered`);
      return value.bind(target);
    },
  });
}

// ---- Queues ----

const opsOf = (body) => Math.max(1, Math.ceil(new TextEncoder().encode(JSON.stringify(body) ?? "").length / QUEUE_OP_BYTES));

/** What a webhooks-queue message is: a wake-up of parked deliveries, a re-check, a retried verification, or a delivery. */
function kindOf(body) {
  if (body?.kind) return body.kind;
  if (body?.not_found_at) return "recheck";
  if (body?.attempt) return "retry";
  return "message";
}

function recordSends(sink, binding, bodies, delaySeconds) {
  for (const body of bodies) {
    const entry = slot(sink.queueSends, binding, () => ({ messages: 0, ops: 0, delayed: 0, kinds: {} }));
    entry.messages += 1;
    entry.ops += opsOf(body);
    if ((delaySeconds ?? 0) > 0) entry.delayed += 1;
    entry.kinds[kindOf(body)] = (entry.kinds[kindOf(body)] ?? 0) + 1;
  }
}

function meterQueue(queue, binding, sink) {
  return new Proxy(queue, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      if (key === "send") {
        return (body, options) => {
          recordSends(sink, binding, [body], options?.delaySeconds);
          return value.call(target, body, options);
        };
      }
      if (key === "sendBatch") {
        return (messages, options) => {
          for (const message of messages) recordSends(sink, binding, [message.body], message.delaySeconds ?? options?.delaySeconds);
          return value.call(target, messages, options);
        };
      }
      return value.bind(target);
    },
  });
}

/** A batch whose messages remember whether they were acked or retried, as the runtime will act on them. */
function meterBatch(batch) {
  const state = new Map();
  const messages = batch.messages.map((message) =>
    Object.freeze({
      id: message.id,
      timestamp: message.timestamp,
      body: message.body,
      attempts: message.attempts,
      ack: () => {
        if (!state.has(message.id)) state.set(message.id, "ack");
        message.ack();
      },
      retry: (options) => {
        if (!state.has(message.id)) state.set(message.id, "retry");
        message.retry(options);
      },
    }),
  );
  const metered = {
    queue: batch.queue,
    metadata: batch.metadata,
    messages,
    ackAll: () => {
      for (const message of messages) message.ack();
    },
    retryAll: (options) => {
      for (const message of messages) message.retry(options);
    },
  };
  return { metered, state };
}

function recordReads(sink, batch, state, threw) {
  const entry = slot(sink.queueReads, batch.queue, () => ({ batches: 0, messages: 0, ops: 0, acked: 0, retried: 0, attempts: 0 }));
  entry.batches += 1;
  for (const message of batch.messages) {
    entry.messages += 1;
    entry.ops += opsOf(message.body);
    entry.attempts += message.attempts;
    // Not acked nor retried: the runtime acks it when the handler returns, retries it when it throws.
    const fate = state.get(message.id) ?? (threw ? "retry" : "ack");
    if (fate === "ack") entry.acked += 1;
    else entry.retried += 1;
  }
}

// ---- Durable Objects and R2 ----

function meterStub(stub, binding, sink) {
  return new Proxy(stub, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function" || typeof key !== "string" || key === "then") return value;
      return (...args) => {
        const entry = slot(sink.durableObjects, binding, () => ({ requests: 0, wallMs: 0, methods: {} }));
        entry.requests += 1;
        entry.methods[key] = (entry.methods[key] ?? 0) + 1;
        const started = Date.now();
        const result = Reflect.apply(value, target, args);
        return Promise.resolve(result).finally(() => {
          entry.wallMs += Date.now() - started;
        });
      };
    },
  });
}

function meterNamespace(namespace, binding, sink) {
  return new Proxy(namespace, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      if (key === "get" || key === "getByName") return (...args) => meterStub(Reflect.apply(value, target, args), binding, sink);
      return value.bind(target);
    },
  });
}

function meterBucket(bucket, sink) {
  return new Proxy(bucket, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      return (...args) => {
        sink.r2[key] = (sink.r2[key] ?? 0) + 1;
        return Reflect.apply(value, target, args);
      };
    },
  });
}

/** A Durable Object's storage calls (the synchronous KV API keeps each key in a SQLite row: a get reads one, a put writes one). */
function meterStorage(ctx, className) {
  const count = (kind) => {
    const entry = slot(meter.durableObjectStorage, className, () => ({ gets: 0, puts: 0, deletes: 0, other: 0 }));
    entry[kind] += 1;
  };
  const counted =
    (target, value, key) =>
    (...args) => {
      count(key === "get" ? "gets" : key === "put" ? "puts" : key === "delete" ? "deletes" : "other");
      return Reflect.apply(value, target, args);
    };
  const kv = new Proxy(ctx.storage.kv, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? counted(target, value, key) : value;
    },
  });
  const storage = new Proxy(ctx.storage, {
    get(target, key) {
      if (key === "kv") return kv;
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      return ["get", "put", "delete", "list"].includes(key) ? counted(target, value, key) : value.bind(target);
    },
  });
  return new Proxy(ctx, {
    get(target, key) {
      if (key === "storage") return storage;
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

export class ProjectRateLimiter extends BundledRateLimiter {
  constructor(ctx, env) {
    super(ctx, env);
    Object.defineProperty(this, "ctx", { value: meterStorage(ctx, "ProjectRateLimiter"), configurable: true });
  }
}

export class DeliveryGate extends BundledDeliveryGate {
  constructor(ctx, env) {
    super(ctx, env);
    Object.defineProperty(this, "ctx", { value: meterStorage(ctx, "DeliveryGate"), configurable: true });
  }
}

// ---- env and handlers ----

const QUEUE_BINDINGS = ["WEBHOOKS", "FULFILLMENTS", "BATCHES", "ENDPOINT_MESSAGES"];
const NAMESPACE_BINDINGS = ["RATE_LIMITER", "DELIVERY_GATE"];

const envs = new Map();
function meteredEnv(env, name) {
  const sink = phase(name);
  const cached = envs.get(name);
  if (cached && cached.env === env && cached.sink === sink) return cached.metered;
  const metered = { ...env };
  for (const key of Object.keys(env)) {
    if (/^DB(_SHARD_\d+)?$/.test(key)) metered[key] = meterDatabase(env[key], sink);
    else if (QUEUE_BINDINGS.includes(key)) metered[key] = meterQueue(env[key], key, sink);
    else if (NAMESPACE_BINDINGS.includes(key)) metered[key] = meterNamespace(env[key], key, sink);
    else if (key === "ARCHIVE") metered[key] = meterBucket(env[key], sink);
  }
  envs.set(name, { env, sink, metered });
  return metered;
}

for (const level of ["log", "info", "warn", "error", "debug"]) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    phase(phaseOf.getStore() ?? "durable objects").logLines += 1;
    original(...args);
  };
}

async function invoke(name, run) {
  const sink = phase(name);
  sink.invocations += 1;
  try {
    return await phaseOf.run(name, run);
  } catch (error) {
    sink.failedInvocations += 1;
    throw error;
  }
}

const fetchPhase = (pathname) => (pathname.startsWith("/webhooks/") ? "edge" : pathname.startsWith("/admin/") ? "admin" : "other fetch");

export default {
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    if (pathname === "/__bench/meter") {
      const snapshot = { ...meter, until: Date.now() };
      if (request.method === "POST") meter = newMeter();
      return Response.json(snapshot);
    }
    const name = fetchPhase(pathname);
    return invoke(name, () => worker.fetch(request, meteredEnv(env, name), ctx));
  },
  async queue(batch, env, ctx) {
    const name = `queue ${batch.queue}`;
    const { metered, state } = meterBatch(batch);
    let threw = false;
    try {
      return await invoke(name, () => worker.queue(metered, meteredEnv(env, name), ctx));
    } catch (error) {
      threw = true;
      throw error;
    } finally {
      recordReads(phase(name), batch, state, threw);
    }
  },
  scheduled: (controller, env, ctx) => invoke("scheduled", () => worker.scheduled(controller, meteredEnv(env, "scheduled"), ctx)),
};
