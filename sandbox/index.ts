import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { apiRoutes } from "./api.ts";
import { controlRoutes } from "./control.ts";
import { errorEnvelope, SandboxError } from "./errors.ts";
import type { DeliveryTransport } from "./webhooks.ts";
import { createWorld } from "./world.ts";

export type { Counters, EventObject, TransactionOperation, TransactionStatus, TransactionView } from "./model.ts";
export { TEST_CARDS, TRANSACTION_STATUSES } from "./model.ts";
export { READINGS, type ReadingName, readingNames, readingPatch } from "./readings.ts";
export { DEFAULT_SETTINGS, type Readings } from "./settings.ts";
export type { DeliveryTransport, RelayedDelivery } from "./webhooks.ts";

export interface SandboxOptions {
  /** Multiplies every emulated delay (webhook backoff, async completion, dispute steps, injected latency). Default 1. */
  timeScale?: number;
  /** How deliveries are sent: a fetch-like function (default: global `fetch`), or "relay" to park them for `/_sandbox/deliveries/claim`. */
  transport?: DeliveryTransport | "relay";
  /** The clock (ms since epoch) for timestamps and rate limits; `/_sandbox/clock` adds to it. Default `Date.now`. */
  now?: () => number;
  /** Source of chance for chaos switches and delivery jitter, in [0, 1). Default `Math.random`. Ids never use it. */
  random?: () => number;
}

export interface Sandbox {
  /** The whole emulator: Smart Router's API and the `/_sandbox/` control API. */
  fetch(request: Request): Promise<Response>;
  /** The Hono app behind `fetch`, to mount elsewhere. */
  app: Hono;
  /** Cancels every timer; nothing runs afterwards. */
  close(): void;
}

/** Creates an in-memory Smart Router sandbox emulator (see sandbox/README.md). */
export function createSandbox(options: SandboxOptions = {}): Sandbox {
  const timeScale = options.timeScale ?? 1;
  if (!(timeScale >= 0) || !Number.isFinite(timeScale)) throw new RangeError(`timeScale must be a finite number >= 0, got ${timeScale}`);
  const world = createWorld({
    timeScale,
    // Looked up per call so a test or a runtime can replace the global fetch later.
    transport: options.transport ?? ((request) => fetch(request)),
    now: options.now ?? (() => Date.now()),
    random: options.random ?? Math.random,
  });

  const app = new Hono();
  // A standard Date header on every answer, errors included, from the emulator's clock (so `/_sandbox/clock` moves
  // it too): a client that reads server time from it sees the same time as the timestamps in the bodies.
  app.use(async (c, next) => {
    await next();
    c.res.headers.set("date", new Date(world.now()).toUTCString());
  });
  app.route("/_sandbox", controlRoutes(world));
  app.route("/", apiRoutes(world));
  app.onError((error, c) => {
    if (error instanceof SandboxError) return c.json(errorEnvelope(error.errorType, error.message), error.status, error.headers);
    if (error instanceof HTTPException) return c.json(errorEnvelope("request.bad-format", error.message), error.status);
    console.error("sandbox: request failed:", error);
    return c.json(errorEnvelope("internal.error", "the sandbox failed to answer; see its log"), 500);
  });

  return {
    fetch: async (request) => app.fetch(request),
    app,
    close: () => world.close(),
  };
}
