import { createMiddleware } from "hono/factory";
import type { AppConfig } from "../env";
import { ApiError } from "../errors";
import { log } from "../lib/log";
import { constantTimeEqual, hashCredential } from "../security/credentials";
import type { AppContext } from "./context";

// Stands in for ADMIN_TOKEN_PREVIOUS when there is none: no presented token hashes to it.
const NO_PREVIOUS_TOKEN_HASH = "-".repeat(64);

/** The token of `Authorization: Bearer <token>`, or "" when the header is missing or of another shape. */
export function bearerToken(header: string | undefined): string {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1] ?? "";
}

/**
 * Which admin token `presented` is: `current` (ADMIN_TOKEN), `previous` (ADMIN_TOKEN_PREVIOUS, while the token
 * rotates) or null. Hashes every side so each comparison is constant-time whatever the lengths, and always compares
 * with both tokens, so the time says nothing about which one matched.
 */
export async function matchAdminToken(config: AppConfig, presented: string): Promise<"current" | "previous" | null> {
  const { ADMIN_TOKEN, ADMIN_TOKEN_PREVIOUS } = config;
  const [given, current, previous] = await Promise.all([
    hashCredential(presented),
    hashCredential(ADMIN_TOKEN),
    ADMIN_TOKEN_PREVIOUS === undefined ? NO_PREVIOUS_TOKEN_HASH : hashCredential(ADMIN_TOKEN_PREVIOUS),
  ]);
  const isCurrent = constantTimeEqual(given, current);
  const isPrevious = constantTimeEqual(given, previous);
  if (presented === "" || !(isCurrent || isPrevious)) return null;
  return isCurrent ? "current" : "previous";
}

/** Logs a use of ADMIN_TOKEN_PREVIOUS: the rotation runbook waits until nothing uses it before removing it. */
export function notePreviousAdminToken(requestId: string, path: string): void {
  log("warn", "admin.previous_token_used", { request_id: requestId, path });
}

/** Requires `Authorization: Bearer <ADMIN_TOKEN>` (or ADMIN_TOKEN_PREVIOUS while the token rotates), compared in constant time. */
export const requireAdmin = () =>
  createMiddleware<AppContext>(async (c, next) => {
    const match = await matchAdminToken(c.var.config, bearerToken(c.req.header("authorization")));
    if (match === null) {
      throw new ApiError("unauthorized", "missing or invalid admin token", { "WWW-Authenticate": 'Bearer realm="admin"' });
    }
    if (match === "previous") notePreviousAdminToken(c.var.requestId, c.req.path);
    await next();
  });
