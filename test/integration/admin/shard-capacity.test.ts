import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { listAdminAlerts } from "../../../src/alerts/admin-alerts";
import { watchShardCapacity } from "../../../src/alerts/shard-capacity";
import { openDatabase } from "../../../src/db/client";
import { measureShard, type Shard } from "../../../src/db/shards";
import { appConfig } from "../../../src/env";
import { runScheduledWork } from "../../../src/scheduled";
import { appWithVars } from "../../support/app";
import { ADMIN, call, createMerchant, registerSandboxProject, uniqueId } from "../../support/fixtures";
import { recordingD1 } from "../../support/recording-d1";
import { SHARDS, shardIndexOf } from "../../support/shards";

/**
 * Issue 21, items 1 and 2 (contract, "Shards: watch and move"): days to full on `GET /admin/shards`, placement by free
 * bytes with no new merchant past 80 % of a shard's capacity, and the `shard_capacity` admin alerts at 80, 90 and 95 %.
 * A test cannot fill 10 GB, so capacities come from SHARD_CAPACITY_BYTES set per app (`appWithVars`) or per step call.
 */

const DEFAULT_CAPACITY = 10_000_000_000;
const DAY_MS = 86_400_000;
const directory = openDatabase(env.DB);
const shardAt = (index: number): Shard => {
  const db = SHARDS[index];
  if (!db) throw new Error(`shard ${index} is not bound in tests`);
  return { index, db: openDatabase(db) };
};
const binding = (index: number) => (index === 0 ? "DB" : `DB_SHARD_${index}`);

interface ShardEntry {
  binding: string;
  index: number;
  bytes: number | null;
  capacity_bytes: number;
  used: number | null;
  growth_bytes_per_day: number | null;
  days_to_full: number | null;
}
interface AlertEntry {
  id: string;
  kind: string;
  state: string;
  transaction_id: string | null;
  opened_at: string;
  resolved_at: string | null;
  detail: string;
}
interface AlertPage {
  alerts: AlertEntry[];
  next_cursor: string | null;
}

type Fetch = (path: string, init?: RequestInit) => Response | Promise<Response>;

async function shardsVia(fetch: Fetch = call): Promise<ShardEntry[]> {
  const response = await fetch("/admin/shards", { headers: ADMIN });
  expect(response.status).toBe(200);
  return ((await response.json()) as { shards: ShardEntry[] }).shards;
}

async function alerts(query = "", headers: Record<string, string> = ADMIN): Promise<AlertPage> {
  const response = await call(`/admin/alerts${query}`, { headers });
  expect(response.status).toBe(200);
  return response.json();
}

/** The open shard_capacity alerts of shard `index`, by the threshold their detail names. */
async function openThresholds(index: number): Promise<number[]> {
  const page = await alerts("?state=open&limit=100");
  return page.alerts
    .filter((alert) => alert.kind === "shard_capacity" && alert.detail.startsWith(`Shard ${binding(index)} `))
    .map((alert) => Number(/past the (\d+)% threshold/.exec(alert.detail)?.[1]))
    .sort((a, b) => a - b);
}

/** Runs the cron's shard step on shard `index` with a capacity that puts it at `share` of it. */
async function stepAt(index: number, share: number) {
  const bytes = await measureShard(shardAt(index).db);
  if (bytes === undefined) throw new Error("miniflare reports every query's size");
  return watchShardCapacity({ directory, shard: shardAt(index), capacityBytes: Math.round(bytes / share), now: Date.now() });
}

/** A registration through `fetch`, with its own id and Smart Router project. */
async function register(fetch: Fetch, id = uniqueId()) {
  const smartRouter = { project_id: `test-proj_${id.replaceAll("-", "")}`, secret_key: `sk_test_${id}` };
  await registerSandboxProject(smartRouter);
  const response = await fetch("/admin/merchants", {
    method: "POST",
    headers: { ...ADMIN, "content-type": "application/json" },
    body: JSON.stringify({ id, name: `Merchant ${id}`, smart_router: smartRouter }),
  });
  return { id, smartRouter, response };
}

const ballasted = new Set<D1Database>();
/** Grows `db` by about `bytes` with a table of zero blobs (built by SQLite, so no bound value nears D1's limits). */
async function addBallast(db: D1Database, bytes: number) {
  await db.exec("CREATE TABLE IF NOT EXISTS test_ballast (b BLOB)");
  ballasted.add(db);
  // Ends after bytes / 256 KB rows.
  for (let written = 0; written < bytes; written += 262_144)
    await db.prepare("INSERT INTO test_ballast (b) VALUES (zeroblob(262144))").run();
}

const renamed: D1Database[] = [];
afterEach(async () => {
  for (const db of ballasted) await db.exec("DROP TABLE test_ballast");
  ballasted.clear();
  // Ends with the last shard whose merchants table was renamed away.
  for (let db = renamed.pop(); db; db = renamed.pop()) await db.exec("ALTER TABLE merchants_down RENAME TO merchants");
  // Every shard back under its real capacity: the alerts this file opened are resolved, as the next cron run would.
  for (const index of [0, 1])
    await watchShardCapacity({ directory, shard: shardAt(index), capacityBytes: DEFAULT_CAPACITY, now: Date.now() });
});

describe("shards: days to full (happy)", () => {
  it("projects days to full from the last 7 days' planted samples; null with fewer than 2 or no growth", async () => {
    const now = Date.now();
    const at = (daysAgo: number) => new Date(now - daysAgo * DAY_MS).toISOString();
    await env.DB.exec("DELETE FROM shard_size_samples");
    const plant = env.DB.prepare("INSERT INTO shard_size_samples (shard, hour, sampled_at, bytes) VALUES (?, ?, ?, ?)");
    const sample = (shard: number, daysAgo: number, bytes: number) => plant.bind(shard, at(daysAgo).slice(0, 13), at(daysAgo), bytes);
    // Shard 1: 5,000,000 bytes over 5 days in the window; the sample 9 days back is outside it (it would give another rate).
    // Shard 0: one sample only.
    await env.DB.batch([
      sample(1, 9, 1),
      sample(1, 6, 1_000_000),
      sample(1, 3.5, 4_200_000),
      sample(1, 1, 6_000_000),
      sample(0, 2, 5_000_000),
    ]);

    const [first, second] = await shardsVia();
    expect(second?.growth_bytes_per_day).toBe(1_000_000);
    expect(second?.days_to_full).toBe(Math.round(((DEFAULT_CAPACITY - (second?.bytes ?? 0)) / 1_000_000) * 10) / 10);
    expect(second?.days_to_full).toBeGreaterThan(9_900);
    expect(first).toMatchObject({ growth_bytes_per_day: null, days_to_full: null });

    // A shard that held still (or shrank) never fills: null, not a division by zero.
    await env.DB.batch([sample(0, 4, 5_000_000), sample(0, 3, 4_000_000)]);
    expect((await shardsVia())[0]).toMatchObject({ growth_bytes_per_day: null, days_to_full: null });
    await env.DB.exec("DELETE FROM shard_size_samples");
  });

  it("samples each shard once an hour from the cron's step and drops samples past 8 days", async () => {
    // Mid-hour of an hour no other test's cron samples: real time could cross the hour between the two calls, or meet a
    // sample another file's cron step wrote for the hour.
    const now = Date.parse("2031-03-04T05:30:00.000Z");
    const old = new Date(now - 9 * DAY_MS).toISOString();
    await env.DB.exec("DELETE FROM shard_size_samples WHERE shard = 1");
    await env.DB.prepare("INSERT INTO shard_size_samples (shard, hour, sampled_at, bytes) VALUES (1, ?, ?, 1)")
      .bind(old.slice(0, 13), old)
      .run();
    const first = await watchShardCapacity({ directory, shard: shardAt(1), capacityBytes: DEFAULT_CAPACITY, now });
    const again = await watchShardCapacity({ directory, shard: shardAt(1), capacityBytes: DEFAULT_CAPACITY, now: now + 1_000 });
    expect(first).toMatchObject({ samples_written: 1 });
    // The old sample, and any another file's cron wrote meanwhile (all more than 8 days before this `now`).
    expect("samples_pruned" in first ? first.samples_pruned : 0).toBeGreaterThanOrEqual(1);
    expect(again).toMatchObject({ samples_written: 0, samples_pruned: 0 });
    const rows = await env.DB.prepare("SELECT hour, bytes FROM shard_size_samples WHERE shard = 1 ORDER BY hour").all<{
      hour: string;
      bytes: number;
    }>();
    expect(rows.results.map((row) => row.hour)).not.toContain(old.slice(0, 13));
    const thisHour = rows.results.filter((row) => row.hour === new Date(now).toISOString().slice(0, 13));
    expect(thisHour).toHaveLength(1);
    expect(thisHour[0]?.bytes).toBe(await measureShard(shardAt(1).db));
  });
});

describe("shards: placement by free bytes (happy)", () => {
  it("places new merchants on the shard with the most free bytes, even while it holds more merchants", async () => {
    const counted = await env.DB.prepare("SELECT shard, count(*) AS n FROM merchant_shards GROUP BY shard").all<{
      shard: number;
      n: number;
    }>();
    const count = (index: number) => counted.results.find((row) => row.shard === index)?.n ?? 0;
    // The shard the merchant count alone would choose is made the fuller one, by more than the 1 % tie.
    const heavy = count(0) <= count(1) ? 0 : 1;
    const light = 1 - heavy;
    const before = await shardsVia();
    const gap = Math.max(2_000_000, Math.ceil(Math.max(...before.map((shard) => shard.bytes ?? 0)) * 0.05));
    await addBallast(SHARDS[heavy] ?? env.DB, (before[light]?.bytes ?? 0) - (before[heavy]?.bytes ?? 0) + gap);
    const sizes = (await shardsVia()).map((shard) => shard.bytes ?? 0);
    // Both far under 80 % of it; the gap is many times 1 % of it.
    const capacity = Math.ceil(Math.max(...sizes) * 2);
    const small = appWithVars({ SHARD_CAPACITY_BYTES: String(capacity) });

    // Two, where the merchant count alone would put one on each shard (the first on `heavy`).
    for (let registration = 0; registration < 2; registration += 1) {
      const { id, response } = await register(small);
      expect(response.status).toBe(201);
      expect(((await response.json()) as { merchant: { shard: string } }).merchant.shard).toBe(binding(light));
      expect(await shardIndexOf(id)).toBe(light);
    }
    const seen = await shardsVia(small);
    expect(seen.map((shard) => shard.capacity_bytes)).toEqual([capacity, capacity]);
    expect(seen[heavy]?.used).toBe(Math.round(((seen[heavy]?.bytes ?? 0) / capacity) * 10_000) / 10_000);
  });

  it("goes to the shard holding fewer merchants while their free bytes are within 1 % of capacity (the default 10 GB)", async () => {
    for (let registration = 0; registration < 3; registration += 1) {
      const counted = await env.DB.prepare("SELECT shard, count(*) AS n FROM merchant_shards GROUP BY shard").all<{
        shard: number;
        n: number;
      }>();
      const count = (index: number) => counted.results.find((row) => row.shard === index)?.n ?? 0;
      const created = await createMerchant();
      expect(await shardIndexOf(created.merchant.id)).toBe(count(0) <= count(1) ? 0 : 1);
    }
  });
});

describe("shards: capacity alerts (happy)", () => {
  it("opens one shard_capacity alert per threshold crossed (80, 90, 95 %), not one per run, and resolves each on the way down", async () => {
    expect(await stepAt(1, 0.85)).toMatchObject({ shard_capacity_alerts_opened: 1, shard_capacity_alerts_resolved: 0 });
    expect(await stepAt(1, 0.85)).toMatchObject({ shard_capacity_alerts_opened: 0 });
    expect(await openThresholds(1)).toEqual([80]);
    expect(await stepAt(1, 0.925)).toMatchObject({ shard_capacity_alerts_opened: 1 });
    expect(await stepAt(1, 0.975)).toMatchObject({ shard_capacity_alerts_opened: 1 });
    expect(await stepAt(1, 0.975)).toMatchObject({ shard_capacity_alerts_opened: 0 });
    expect(await openThresholds(1)).toEqual([80, 90, 95]);

    const page = await alerts("?state=open&limit=100");
    const ninetyFive = page.alerts.find((alert) => alert.detail.startsWith("Shard DB_SHARD_1 ") && alert.detail.includes("past the 95%"));
    expect(ninetyFive).toMatchObject({ kind: "shard_capacity", state: "open", transaction_id: null, resolved_at: null });
    expect(ninetyFive?.detail).toMatch(/^Shard DB_SHARD_1 is 97\.5% full \(used 0\.975: \d+ of \d+ bytes\)/);
    expect(ninetyFive?.id).toMatch(/^aa_[0-9a-f]{32}$/);
    expect(new Date(ninetyFive?.opened_at ?? "").toISOString()).toBe(ninetyFive?.opened_at);

    expect(await stepAt(1, 0.92)).toMatchObject({ shard_capacity_alerts_opened: 0, shard_capacity_alerts_resolved: 1 });
    expect(await openThresholds(1)).toEqual([80, 90]);
    expect(await stepAt(1, 0.5)).toMatchObject({ shard_capacity_alerts_resolved: 2 });
    expect(await openThresholds(1)).toEqual([]);
    const resolved = (await alerts("?state=all&limit=100")).alerts.find((alert) => alert.id === ninetyFive?.id);
    expect(resolved).toMatchObject({ state: "resolved" });
    expect(resolved?.resolved_at).not.toBeNull();
    // Shard 0's alerts are its own: none opened by shard 1's checks.
    expect(await openThresholds(0)).toEqual([]);
  });

  it("pages the admin alerts newest first with a cursor, in the shape of /v1/alerts", async () => {
    await stepAt(1, 0.975);
    const seen: AlertEntry[] = [];
    let cursor: string | null = null;
    // Ends at the last page (next_cursor null), at most 100 pages of 1.
    for (let page = 0; page < 100; page += 1) {
      const body: AlertPage = await alerts(`?state=open&limit=1${cursor ? `&cursor=${cursor}` : ""}`);
      expect(body.alerts.length).toBeLessThanOrEqual(1);
      seen.push(...body.alerts);
      cursor = body.next_cursor;
      if (cursor === null) break;
    }
    expect(seen.filter((alert) => alert.detail.startsWith("Shard DB_SHARD_1 "))).toHaveLength(3);
    const keys = seen.map((alert) => `${alert.opened_at} ${alert.id}`);
    expect([...keys].sort().reverse()).toEqual(keys);
    for (const alert of seen)
      expect(Object.keys(alert).sort()).toEqual([
        "acknowledged_at",
        "detail",
        "id",
        "kind",
        "opened_at",
        "resolved_at",
        "state",
        "transaction_id",
      ]);
  });
});

describe("shards: the 80 % limit (errors)", () => {
  it("takes no new merchant on a shard past 80 %: with the other shard failing, a registration is 503 and claims nothing", async () => {
    const sizes = (await shardsVia()).map((shard) => shard.bytes ?? 0);
    // Shard 0 at ~90 % of this capacity; shard 1 fails its probe.
    const capacity = Math.floor((sizes[0] ?? 0) / 0.9);
    await env.DB_SHARD_1.exec("ALTER TABLE merchants RENAME TO merchants_down");
    renamed.push(env.DB_SHARD_1);
    const { id, smartRouter, response } = await register(appWithVars({ SHARD_CAPACITY_BYTES: String(capacity) }));
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("3600");
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error).toMatchObject({ code: "service_unavailable" });
    expect(body.error.message).toMatch(/past 80% of its capacity/);
    expect(await env.DB.prepare("SELECT merchant_id FROM merchant_shards WHERE merchant_id = ?").bind(id).first()).toBeNull();
    expect(await env.DB.prepare("SELECT merchant_id FROM api_key_directory WHERE merchant_id = ?").bind(id).first()).toBeNull();
    expect(await env.DB.prepare("SELECT id FROM merchants WHERE id = ?").bind(id).first()).toBeNull();

    // Nothing was claimed: the same id and project register once a shard can take them (here under D1's real capacity).
    const retried = await call("/admin/merchants", {
      method: "POST",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ id, name: "Later", smart_router: smartRouter }),
    });
    expect(retried.status).toBe(201);
    expect(await shardIndexOf(id)).toBe(0);
  });

  it("refuses a registration when every shard is past 80 %, and the cron raises a shard_capacity alert for each", async () => {
    const sizes = (await shardsVia()).map((shard) => shard.bytes ?? 0);
    const capacity = Math.floor(Math.min(...sizes) / 0.85);
    const vars = { SHARD_CAPACITY_BYTES: String(capacity) };
    const { id, response } = await register(appWithVars(vars));
    expect(response.status).toBe(503);
    expect(await shardIndexOf(id)).toBeUndefined();
    for (const db of SHARDS) expect(await db.prepare("SELECT id FROM merchants WHERE id = ?").bind(id).first()).toBeNull();

    // The cron's step table runs the shard step (dated 1990 like scheduled.test.ts, so its other steps find nothing).
    await runScheduledWork({ ...env, ...vars }, Date.parse("1990-01-01T06:00:00.000Z"));
    expect(await openThresholds(0)).toContain(80);
    expect(await openThresholds(1)).toContain(80);
  });

  it("answers 400 to a malformed query of /admin/alerts", async () => {
    for (const query of ["?state=closed", "?state=open&state=all", "?limit=0", "?limit=101", "?since=2020-01-01"]) {
      const response = await call(`/admin/alerts${query}`, { headers: ADMIN });
      expect(response.status, query).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code, query).toBe("invalid_query");
    }
    const garbage = await call("/admin/alerts?cursor=not-a-cursor", { headers: ADMIN });
    expect(garbage.status).toBe(400);
    expect(((await garbage.json()) as { error: { code: string } }).error.code).toBe("invalid_cursor");

    // A cursor of the `all` list with `state=open` would mix two lists.
    await stepAt(1, 0.975);
    const first = await alerts("?state=all&limit=1");
    expect(first.next_cursor).not.toBeNull();
    const mixed = await call(`/admin/alerts?state=open&cursor=${first.next_cursor}`, { headers: ADMIN });
    expect(mixed.status).toBe(400);
    expect(((await mixed.json()) as { error: { code: string } }).error.code).toBe("invalid_cursor");
  });

  it("refuses a SHARD_CAPACITY_BYTES that is not a positive whole number, naming it", () => {
    for (const value of ["0", "-5", "ten", "1.5"]) {
      expect(() => appConfig({ ...env, SHARD_CAPACITY_BYTES: value }), value).toThrow(/invalid configuration: SHARD_CAPACITY_BYTES/);
    }
    expect(appConfig({ ...env, SHARD_CAPACITY_BYTES: undefined }).SHARD_CAPACITY_BYTES).toBe(DEFAULT_CAPACITY);
  });
});

describe("shards: admin alerts (security)", () => {
  it("needs the admin token: none, a wrong one and a merchant's API key are 401", async () => {
    await stepAt(1, 0.85);
    const merchant = await createMerchant();
    const refused: Record<string, string>[] = [
      {},
      { authorization: "Bearer wrong-token-0123456789abcdef" },
      { authorization: `Bearer ${merchant.api_key}` },
    ];
    for (const headers of refused) {
      const response = await call("/admin/alerts?state=all", { headers });
      expect(response.status).toBe(401);
      const text = await response.text();
      expect(text).not.toContain("DB_SHARD_1");
      expect(text).not.toContain("shard_capacity");
    }
  });

  it("never shows an admin alert on a merchant's /v1/alerts, not even to the admin token acting as the merchant", async () => {
    await stepAt(1, 0.975);
    const merchant = await createMerchant();
    for (const headers of [{ authorization: `Bearer ${merchant.api_key}` }, { ...ADMIN, "x-merchant-id": merchant.merchant.id }]) {
      const response = await call("/v1/alerts?state=all", { headers });
      expect(response.status).toBe(200);
      const body = (await response.json()) as AlertPage;
      expect(body.alerts.filter((alert) => alert.kind === "shard_capacity")).toEqual([]);
    }
  });
});

describe("shards: admin alerts are served by indexes", () => {
  it("reads a page of open and of all admin alerts, first and after a cursor, from their indexes", async () => {
    await stepAt(1, 0.975);
    const { d1, statements } = recordingD1(env.DB);
    const first = await listAdminAlerts({ db: openDatabase(d1), query: { state: "all", limit: 1 } });
    await listAdminAlerts({ db: openDatabase(d1), query: { state: "all", limit: 1, cursor: first.next_cursor ?? undefined } });
    await listAdminAlerts({ db: openDatabase(d1), query: { state: "open", limit: 1 } });
    expect(statements).toHaveLength(3);
    for (const { sql, params } of statements) {
      const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .bind(...params)
        .all<{ detail: string }>();
      const details = plan.results.map((row) => row.detail).join("\n");
      expect(details, sql).toMatch(/USING (COVERING )?INDEX admin_alerts_(state_)?opened/);
      expect(details, sql).not.toMatch(/TEMP B-TREE/);
    }
  });
});
