import type { Context, Next } from "hono";
import { createMiddleware } from "hono/factory";
import { type AdminAction, type AdminActionEntry, recordAdminActions } from "../audit/audit";
import { safeErrorMessage } from "../db/errors";
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

/** What a request's handlers note for the admin audit (`noteAdminAction`), written once the request is over (`auditAdminActions`). */
export type AuditVariables = { adminActions?: AdminActionEntry[] };

/** Context of the admin routes, behind `requireAdmin()`. */
export type AdminContext = {
  Bindings: AppContext["Bindings"];
  Variables: AppContext["Variables"] & AuditVariables;
};

/** Notes admin actions this request has just made, one entry per target; `auditAdminActions` records them after the request. */
export function noteAdminAction<E extends AdminContext>(c: Context<E>, action: AdminAction, targets: readonly string[]): void {
  c.set("adminActions", [...(c.var.adminActions ?? []), ...targets.map((target) => ({ action, target }))]);
}

/**
 * Runs the rest of the request, then records in the admin audit what it noted: the one place the audit is written. An
 * action is noted once its change is made, so its entry follows the change, and a refused request (nothing noted) leaves none.
 * A failed audit write is logged at error with the entries, and the answer stands: the change is committed (usually on
 * another shard than the audit's DB, so not in one D1 batch with it), and an error here would hide a secret shown only in
 * that answer (a new API key, webhook password or signing secret) and invite a retry of a change that already happened.
 */
export async function auditAdminActions<E extends AdminContext>(c: Context<E>, next: Next): Promise<void> {
  await next();
  const actions = c.var.adminActions ?? [];
  try {
    await recordAdminActions({ db: c.var.directoryDb, requestId: c.var.requestId, actions });
  } catch (error) {
    log("error", "admin.audit_failed", { request_id: c.var.requestId, actions, error: safeErrorMessage(error) });
  }
}

/**
 * Requires `Authorization: Bearer <ADMIN_TOKEN>` (or ADMIN_TOKEN_PREVIOUS while the token rotates), compared in constant
 * time; then audits what the request noted.
 */
export const requireAdmin = () =>
  createMiddleware<AdminContext>(async (c, next) => {
    const match = await matchAdminToken(c.var.config, bearerToken(c.req.header("authorization")));
    if (match === null) {
      throw new ApiError("unauthorized", "missing or invalid admin token", { "WWW-Authenticate": 'Bearer realm="admin"' });
    }
    if (match === "previous") notePreviousAdminToken(c.var.requestId, c.req.path);
    await auditAdminActions(c, next);
  });
