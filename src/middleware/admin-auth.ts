import { createMiddleware } from "hono/factory";
import type { AppContext } from "../app";
import { ApiError } from "../errors";
import { log } from "../lib/log";
import { constantTimeEqual, hashCredential } from "../security/credentials";

// Stands in for ADMIN_TOKEN_PREVIOUS when there is none: no presented token hashes to it.
const NO_PREVIOUS_TOKEN_HASH = "-".repeat(64);

/**
 * Requires `Authorization: Bearer <ADMIN_TOKEN>` (or ADMIN_TOKEN_PREVIOUS while the token rotates). Hashes every side
 * so each comparison is constant-time whatever the lengths, and always compares with both tokens, so the time says
 * nothing about which one matched.
 */
export const requireAdmin = () =>
  createMiddleware<AppContext>(async (c, next) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
    const presented = match?.[1] ?? "";
    const { ADMIN_TOKEN, ADMIN_TOKEN_PREVIOUS } = c.var.config;
    const [given, current, previous] = await Promise.all([
      hashCredential(presented),
      hashCredential(ADMIN_TOKEN),
      ADMIN_TOKEN_PREVIOUS === undefined ? NO_PREVIOUS_TOKEN_HASH : hashCredential(ADMIN_TOKEN_PREVIOUS),
    ]);
    const isCurrent = constantTimeEqual(given, current);
    const isPrevious = constantTimeEqual(given, previous);
    if (presented === "" || !(isCurrent || isPrevious)) {
      throw new ApiError("unauthorized", "missing or invalid admin token", { "WWW-Authenticate": 'Bearer realm="admin"' });
    }
    // The rotation runbook waits until nothing uses the previous token before removing it.
    if (isPrevious && !isCurrent) log("warn", "admin.previous_token_used", { request_id: c.var.requestId, path: c.req.path });
    await next();
  });
