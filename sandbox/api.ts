import { Hono } from "hono";
import { SandboxError } from "./errors.ts";
import { type GcraDecision, type GcraLimit, gcraTake } from "./gcra.ts";
import { type BucketName, type ProjectState, presentEvent, presentEventListItem, presentTransaction } from "./model.ts";
import { paginate, parsePageQuery } from "./pagination.ts";
import { DEFAULT_SETTINGS } from "./settings.ts";
import type { World } from "./world.ts";

type ApiEnv = { Variables: { project: ProjectState } };

function parseBasic(header: string | undefined): { username: string; password: string } | null {
  const match = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  if (!match?.[1]) return null;
  let decoded: string;
  try {
    decoded = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
      Uint8Array.from(atob(match[1]), (char) => char.charCodeAt(0)),
    );
  } catch {
    return null;
  }
  const colon = decoded.indexOf(":");
  return colon < 0 ? null : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

// Compares without an early exit, as a real API would compare secrets.
function sameSecret(a: string, b: string): boolean {
  const left = new TextEncoder().encode(a);
  const right = new TextEncoder().encode(b);
  let difference = left.length ^ right.length;
  for (let i = 0; i < Math.max(left.length, right.length); i++) difference |= (left[i] ?? 0) ^ (right[i] ?? 0);
  return difference === 0;
}

/**
 * The buckets a request takes a token from (smart-router.md §6): GET /events and GET /events/{id} use the
 * secondary ("events") bucket, everything else the primary; a sandbox project's requests use the sandbox bucket
 * instead, or in addition when the project's `sandbox_bucket` is `both`.
 */
function bucketsFor(project: ProjectState, method: string, path: string): BucketName[] {
  const base: BucketName = method === "GET" && /^\/events(\/[^/]+)?\/?$/.test(path) ? "events" : "primary";
  if (!project.sandbox) return [base];
  return project.settings.rates.sandbox_bucket === "both" ? ["sandbox", base] : ["sandbox"];
}

function rateHeaders(limit: GcraLimit, decision: GcraDecision): Record<string, string> {
  const headers: Record<string, string> = { "x-ratelimit": String(limit.rpm), "x-ratelimit-remaining": String(decision.remaining) };
  if (!decision.allowed) headers["retry-after"] = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
  return headers;
}

function rateExceeded(headers: Record<string, string>): SandboxError {
  return new SandboxError(429, "request.rate.exceeded", "too many requests: the rate limit of this project was exceeded", headers);
}

/** Smart Router's REST API: Basic auth per project, three GCRA buckets, chaos, and the read endpoints we use. */
export function apiRoutes(world: World) {
  const chance = (rate: number) => rate > 0 && world.random() < rate;

  return new Hono<ApiEnv>()
    .use(async (c, next) => {
      const credentials = parseBasic(c.req.header("authorization"));
      const project = credentials ? world.projects.get(credentials.username) : undefined;
      if (!credentials || !project || !sameSecret(credentials.password, project.secretKey)) {
        if (project) project.counters.auth_failures++;
        // Unknown credentials charge no project: they share one anonymous bucket at the default primary rate.
        const limit = { rpm: DEFAULT_SETTINGS.rates.primary, burst: DEFAULT_SETTINGS.rates.burst };
        const decision = gcraTake(world.anonymousBucket.state, world.now(), limit);
        world.anonymousBucket.state = decision.state;
        if (!decision.allowed) throw rateExceeded(rateHeaders(limit, decision));
        throw new SandboxError(401, "request.authentication.invalid", "the project id or secret key is invalid", {
          ...rateHeaders(limit, decision),
          "www-authenticate": 'Basic realm="ProcessOut"',
        });
      }

      const rates = project.settings.rates;
      const now = world.now();
      const taken = bucketsFor(project, c.req.method, c.req.path).map((bucket) => {
        const limit = { rpm: rates[bucket], burst: rates.burst };
        return { bucket, limit, decision: gcraTake(project.buckets[bucket], now, limit) };
      });
      const refused = taken.find((entry) => !entry.decision.allowed);
      // Report the tightest bucket: the one that refused, else the one with the fewest tokens left.
      const shown =
        refused ?? taken.reduce((tightest, entry) => (entry.decision.remaining < tightest.decision.remaining ? entry : tightest));
      const headers = rateHeaders(shown.limit, shown.decision);
      for (const { bucket, decision } of taken) {
        project.counters.api[bucket].requests++;
        // A token is spent only when every bucket had one.
        if (!refused) project.buckets[bucket] = decision.state;
      }

      await world.scheduler.sleep(project.settings.chaos.api_latency_ms);
      if (refused) {
        project.counters.api[refused.bucket].rate_limited++;
        throw rateExceeded(headers);
      }
      const chaos = project.settings.chaos;
      if (chance(chaos.api_429_rate)) {
        for (const { bucket } of taken) project.counters.api[bucket].injected_429++;
        throw rateExceeded({ ...headers, "x-ratelimit-remaining": "0", "retry-after": "1" });
      }
      if (chance(chaos.api_5xx_rate)) {
        for (const { bucket } of taken) project.counters.api[bucket].injected_5xx++;
        throw new SandboxError(503, "service.unavailable", "the service is temporarily unavailable (injected by the sandbox)", headers);
      }

      c.set("project", project);
      await next();
      for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value);
      const status = c.res.status;
      for (const { bucket } of taken) {
        if (status >= 200 && status < 300) project.counters.api[bucket].succeeded++;
        else if (status >= 400 && status < 500) project.counters.api[bucket].client_errors++;
      }
    })
    .get("/events/:id", async (c) => {
      const project = c.var.project;
      const id = c.req.param("id");
      const index = project.eventIndex.get(id);
      // An event still inside the read lag is not found yet, exactly like an unknown one.
      const event = index === undefined || index >= world.readableEvents(project) ? undefined : project.events[index];
      if (!event) throw new SandboxError(404, "resource.event.not-found", `event ${id} not found`);
      const { amount_format, event_snapshot } = project.settings.readings;
      const delay = project.eventReadDelays.get(id);
      if (delay) await new Promise((resolve) => setTimeout(resolve, delay));
      const current =
        event_snapshot === "live" ? project.transactions[project.transactionIndex.get(event.data.transaction.id) ?? -1] : undefined;
      const shown = current ? { ...event, data: { ...event.data, transaction: presentTransaction(current, true) } } : event;
      return c.json({ success: true, event: presentEvent(shown, amount_format) });
    })
    .get("/events", (c) => {
      const project = c.var.project;
      const { amount_format, events_list_items } = project.settings.readings;
      const readable = world.readableEvents(project);
      const events = readable === project.events.length ? project.events : project.events.slice(0, readable);
      const page = paginate(
        events,
        (id) => {
          const index = project.eventIndex.get(id);
          return index !== undefined && index < readable ? index : undefined;
        },
        parsePageQuery(new URL(c.req.url).searchParams),
      );
      return c.json({
        success: true,
        events: page.items.map((event) => presentEventListItem(event, amount_format, events_list_items)),
        has_more: page.hasMore,
      });
    })
    .get("/transactions/:id", (c) => {
      const project = c.var.project;
      const tx = world.transaction(project, c.req.param("id"));
      return c.json({
        success: true,
        transaction: presentTransaction(tx, expandsOperations(c.req.url), project.settings.readings.amount_format),
      });
    })
    .get("/transactions", (c) => {
      const project = c.var.project;
      const page = paginate(
        project.transactions,
        (id) => project.transactionIndex.get(id),
        parsePageQuery(new URL(c.req.url).searchParams),
      );
      const withOperations = expandsOperations(c.req.url);
      return c.json({
        success: true,
        transactions: page.items.map((tx) => presentTransaction(tx, withOperations, project.settings.readings.amount_format)),
        has_more: page.hasMore,
      });
    })
    .all("*", (c) => {
      throw new SandboxError(404, "request.route-not-found", `no route for ${c.req.method} ${c.req.path}`);
    });
}

// The SDKs send `expand[]=operations`; a bare `expand=operations` is accepted too.
function expandsOperations(url: string): boolean {
  const params = new URL(url).searchParams;
  return [...params.getAll("expand[]"), ...params.getAll("expand")].some((value) => value.split(",").includes("operations"));
}
