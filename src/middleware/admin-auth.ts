import { createMiddleware } from "hono/factory";
import type { AppContext } from "../app";
import { ApiError } from "../errors";
import { constantTimeEqual, hashCredential } from "../security/credentials";

/** Requires `Authorization: Bearer <ADMIN_TOKEN>`; hashes both sides so the comparison is constant-time whatever the lengths. */
export const requireAdmin = () =>
  createMiddleware<AppContext>(async (c, next) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
    const presented = match?.[1] ?? "";
    const [given, expected] = await Promise.all([hashCredential(presented), hashCredential(c.var.config.ADMIN_TOKEN)]);
    if (!constantTimeEqual(given, expected) || presented === "") {
      throw new ApiError("unauthorized", "missing or invalid admin token", { "WWW-Authenticate": 'Bearer realm="admin"' });
    }
    await next();
  });
