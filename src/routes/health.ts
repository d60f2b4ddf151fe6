import { Hono } from "hono";
import type { AppContext } from "../app";
import { ApiError } from "../errors";

export const healthRoutes = new Hono<AppContext>()
  .get("/", (c) => c.json({ ok: true }))
  .get("/ready", async (c) => {
    try {
      await c.env.DB.prepare("SELECT 1").first();
    } catch {
      throw new ApiError("service_unavailable", "database is not reachable", { "Retry-After": "5" });
    }
    return c.json({ ok: true, checks: { database: "ok" } });
  });
