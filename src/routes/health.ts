import { Hono } from "hono";
import { probeShards } from "../db/shards";
import { bearerToken, matchAdminToken } from "../http/admin-auth";
import type { AppContext } from "../http/context";

export const healthRoutes = new Hono<AppContext>()
  .get("/", (c) => c.json({ ok: true }))
  // Every shard, with a read of a real table: a merchant whose shard is unreachable or unmigrated is not served.
  .get("/ready", async (c) => {
    const shards = await probeShards(c.env);
    const ok = shards.every((shard) => shard.ok);
    // Which shard fails and why only for the admin token: binding names and D1's messages describe the deployment.
    const admin = (await matchAdminToken(c.var.config, bearerToken(c.req.header("authorization")))) !== null;
    if (!ok) c.header("Retry-After", "5");
    return c.json(admin ? { ok, shards } : { ok }, ok ? 200 : 503);
  });
