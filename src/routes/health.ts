import { sql } from "drizzle-orm";
import { Hono } from "hono";
import { shardDatabases } from "../db/shards";
import { ApiError } from "../errors";
import type { AppContext } from "../http/context";

export const healthRoutes = new Hono<AppContext>()
  .get("/", (c) => c.json({ ok: true }))
  .get("/ready", async (c) => {
    try {
      // Every shard: a merchant whose shard is unreachable is not served.
      await Promise.all(shardDatabases(c.env).map((db) => db.get(sql`SELECT 1`)));
    } catch {
      throw new ApiError("service_unavailable", "database is not reachable", { "Retry-After": "5" });
    }
    return c.json({ ok: true, checks: { database: "ok" } });
  });
