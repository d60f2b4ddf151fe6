import type { MiddlewareHandler } from "hono";
import { log } from "../lib/log";
import type { AppContext } from "./context";

/** A request slower than this (ms) logs its line even when it succeeded. */
export const SLOW_REQUEST_MS = 1000;

/** Paths whose routes log their own outcome line (the webhook edge's `webhook.delivery`). */
const SELF_LOGGED = "/webhooks/";

/**
 * One `request` line for a request that needs a look: answered 4xx or 5xx, or slower than SLOW_REQUEST_MS. Invocation
 * logs are off (wrangler.toml: each is a billed event), so this is what on-call finds of such a request; a fast success
 * logs nothing (Workers metrics count it). The path only: a query string may carry a merchant's references.
 */
export const accessLog: MiddlewareHandler<AppContext> = async (c, next) => {
  const started = Date.now();
  await next();
  const ms = Date.now() - started;
  const status = c.res.status;
  if (c.req.path.startsWith(SELF_LOGGED) || (status < 400 && ms < SLOW_REQUEST_MS)) return;
  log(status >= 500 || ms >= SLOW_REQUEST_MS ? "warn" : "info", "request", {
    request_id: c.var.requestId,
    method: c.req.method,
    path: c.req.path,
    status,
    ms,
  });
};
