import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../../src/app";
import { openDatabase } from "../../src/db/client";
import { listApiKeysInDirectory } from "../../src/merchants/api-keys";
import { forgetWebhookCredentials } from "../../src/merchants/credential-directory";
import { runScheduledWork } from "../../src/scheduled";
import { generateApiKey, hashCredential } from "../../src/security/credentials";
import { ADMIN, basic, type CreatedMerchant, call, createMerchant, deliver, registerSandboxProject, uniqueId } from "../support/fixtures";
import { eventually, openShop, type Shop } from "../support/sandbox";
import { shardIndexOf } from "../support/shards";
import { getWithKey, issueKey, seedFulfillment } from "../support/status-api";

/**
 * Issue 20, item 1: a shard that fails (here DB_SHARD_1, its tables renamed away as an unmigrated shard would lack them)
 * fails only its own merchants, and never with a 500.
 */
const renamed: { db: D1Database; table: string }[] = [];

/** Renames `tables` of `db` away, as a shard that was never migrated (or lost them) would be; afterEach renames them back. */
async function breakTables(db: D1Database, tables: readonly string[]) {
  for (const table of tables) {
    await db.exec(`ALTER TABLE ${table} RENAME TO ${table}_down`);
    renamed.push({ db, table });
  }
}

afterEach(async () => {
  vi.restoreAllMocks();
  // A shard whose credentials failed to load is not asked again for 5 s: the next test starts from a fresh directory.
  forgetWebhookCredentials();
  // Ends with the first table renamed (the list is emptied from its end).
  for (let entry = renamed.pop(); entry; entry = renamed.pop()) {
    await entry.db.exec(`ALTER TABLE ${entry.table}_down RENAME TO ${entry.table}`);
  }
});

const SHARD_1_TABLES = ["merchants", "api_keys", "transactions", "events", "fulfillments", "event_log_cursors"] as const;

/** Registers merchants until one lands on `shard` (least-full assignment alternates, so a few suffice). */
async function onShard<T>(shard: number, register: () => Promise<T>, merchantOf: (registered: T) => CreatedMerchant): Promise<T> {
  // Ends within a few registrations: each goes to the shard holding fewer merchants.
  for (let attempt = 0; attempt < 8; attempt += 1) {
    const registered = await register();
    if ((await shardIndexOf(merchantOf(registered).merchant.id)) === shard) return registered;
  }
  throw new Error(`no registration reached shard ${shard}`);
}
const merchantOn = (shard: number) =>
  onShard(
    shard,
    () => createMerchant(),
    (merchant) => merchant,
  );
const shopOn = (shard: number) =>
  onShard(
    shard,
    () => openShop({ unlimited: true, webhooks: false }),
    (shop: Shop) => shop.merchant,
  );

const errorLines = (spy: { mock: { calls: unknown[][] } }) => spy.mock.calls.map(([line]) => String(line));

describe("a failing shard fails only its merchants: happy paths of the healthy shard", () => {
  it("accepts and applies a delivery for a merchant on DB while DB_SHARD_1 fails, also in an isolate that starts then", async () => {
    const shop = await shopOn(0);
    const payment = await shop.pay({ card: "4242424242424242", amount: "7.00", currency: "EUR" });
    const events = (await shop.truth()).events.filter((candidate) => candidate.transaction_id === payment.id);
    await breakTables(env.DB_SHARD_1, SHARD_1_TABLES);
    // An isolate starting now: no credential copy of any shard yet.
    forgetWebhookCredentials();
    for (const event of events) {
      const response = await deliver(shop.merchant, { event_id: event.id, event_type: event.name });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ received: true });
    }
    await eventually(
      async () =>
        expect(
          await env.DB.prepare("SELECT status FROM transactions WHERE merchant_id = ? AND id = ?")
            .bind(shop.merchant.merchant.id, payment.id)
            .first(),
        ).toEqual({ status: "completed" }),
      { timeoutMs: 15_000 },
    );
  });

  it("answers the status API of a merchant on DB as usual, with a key issued before and one issued during the fault", async () => {
    const merchant = await merchantOn(0);
    await breakTables(env.DB_SHARD_1, SHARD_1_TABLES);
    const listed = await getWithKey("/v1/transactions", merchant.api_key);
    expect(listed.status).toBe(200);
    expect(await listed.json()).toEqual({ transactions: [], next_cursor: null });
    const another = await issueKey(merchant);
    expect((await getWithKey("/v1/transactions", another.key)).status).toBe(200);
  });

  it("registers new merchants on the healthy shard only", async () => {
    await breakTables(env.DB_SHARD_1, ["merchants"]);
    for (let i = 0; i < 3; i += 1) {
      const { merchant } = await createMerchant();
      expect(await shardIndexOf(merchant.id)).toBe(0);
    }
  });

  it("runs the cron's steps on the healthy shard and does not fail the run for the failing shard", async () => {
    const { merchant } = await merchantOn(0);
    const transactionId = `tr_fault${crypto.randomUUID().replaceAll("-", "")}`;
    await seedFulfillment({ merchantId: merchant.id, transactionId, requestedAt: "1991-02-01T00:00:00.000Z" });
    const sent: { transaction_id: string }[] = [];
    const queue: Queue = {
      metrics: async () => ({ backlogCount: 0, backlogBytes: 0 }),
      send: async (body) => {
        sent.push(body as (typeof sent)[number]);
        return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
      },
      sendBatch: async (messages) => {
        // Ends with the batch's last message.
        for (const message of messages) sent.push(message.body as (typeof sent)[number]);
        return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
      },
    };
    await breakTables(env.DB_SHARD_1, SHARD_1_TABLES);
    const errors = vi.spyOn(console, "error");
    try {
      await runScheduledWork({ ...env, FULFILLMENTS: queue }, Date.parse("1991-02-01T01:00:00.000Z"));
      expect(sent.map((nudge) => nudge.transaction_id)).toContain(transactionId);
      const failures = errorLines(errors)
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => line.message === "scheduled.step_failed");
      expect(failures.length).toBeGreaterThan(0);
      expect(failures.every((line) => line.shard === 1)).toBe(true);
      // D1's own message names the table; no bound parameter of the failed query is logged.
      expect(errorLines(errors).join("\n")).not.toContain("params:");
    } finally {
      await env.DB.prepare("UPDATE fulfillments SET status = 'delivered' WHERE merchant_id = ?").bind(merchant.id).run();
    }
  });

  it("finds a key issued before the API key directory once the cron's backfill has listed it, and lists it once", async () => {
    const merchant = await merchantOn(1);
    // A key as stored before issue 20: on its shard only, not listed in the directory.
    const { keyId, apiKey } = generateApiKey();
    await env.DB_SHARD_1.prepare("INSERT INTO api_keys (id, merchant_id, key_hash) VALUES (?, ?, ?)")
      .bind(keyId, merchant.merchant.id, await hashCredential(apiKey))
      .run();
    expect((await getWithKey("/v1/transactions", apiKey)).status).toBe(401);
    const backfill = () => listApiKeysInDirectory({ db: openDatabase(env.DB_SHARD_1), directory: openDatabase(env.DB), shard: 1 });
    expect(await backfill()).toBeGreaterThanOrEqual(1);
    expect(await backfill()).toBe(0);
    expect(await env.DB.prepare("SELECT merchant_id, shard FROM api_key_directory WHERE key_id = ?").bind(keyId).first()).toEqual({
      merchant_id: merchant.merchant.id,
      shard: 1,
    });
    expect((await getWithKey("/v1/transactions", apiKey)).status).toBe(200);
  });

  it("answers /health/ready 200 {ok:true} when every shard answers", async () => {
    const response = await call("/health/ready");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true });
  });
});

describe("a failing shard fails only its merchants: the failing shard's merchants and errors", () => {
  it("accepts a delivery for the failing shard's merchant while its credential copy lasts, then answers 503, never 500", async () => {
    const onFailing = await merchantOn(1);
    const good = basic(onFailing.webhook.username, onFailing.webhook.password);
    forgetWebhookCredentials();
    expect((await deliver(onFailing, { event_id: "ev_faultloaded" })).status).toBe(200);
    await breakTables(env.DB_SHARD_1, SHARD_1_TABLES);
    // Past the refresh: the reload of shard 1 fails and its last good copy keeps serving.
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, "now").mockImplementation(() => realNow() + 61_000);
    expect((await deliver(onFailing, { event_id: "ev_faultstale" })).status).toBe(200);

    // An isolate that never loaded shard 1 cannot check the credential: 503 with Retry-After and the envelope.
    forgetWebhookCredentials();
    const refused = await call(onFailing.webhook.path, {
      method: "POST",
      headers: { authorization: good },
      body: '{"event_id":"ev_faultnew"}',
    });
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("service_unavailable");
  });

  it("keeps the failing shard's credential copy when a merchant of the other shard rotates its password or edge limit", async () => {
    const onFailing = await merchantOn(1);
    const onHealthy = await merchantOn(0);
    forgetWebhookCredentials();
    expect((await deliver(onFailing, { event_id: "ev_keptloaded" })).status).toBe(200);
    await breakTables(env.DB_SHARD_1, SHARD_1_TABLES);
    const rotated = await call(`/admin/merchants/${onHealthy.merchant.id}/webhook-credential`, { method: "POST", headers: ADMIN });
    expect(rotated.status).toBe(201);
    const patched = await call(`/admin/merchants/${onHealthy.merchant.id}`, {
      method: "PATCH",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ rate_limits: { webhooks_rpm: 1200 } }),
    });
    expect(patched.status).toBe(200);
    // Only DB's copy was dropped: the failing shard's merchant is still checked against its cached credential.
    expect((await deliver(onFailing, { event_id: "ev_keptafter" })).status).toBe(200);
  });

  it("answers the status API of the failing shard's merchant 503 with Retry-After, logging no bound parameter", async () => {
    const onFailing = await merchantOn(1);
    await breakTables(env.DB_SHARD_1, SHARD_1_TABLES);
    const errors = vi.spyOn(console, "error");
    const response = await getWithKey("/v1/transactions", onFailing.api_key);
    expect(response.status).toBe(503);
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("service_unavailable");
    expect(body.error.message).not.toMatch(/SELECT|params|api_keys/i);
    const logged = errorLines(errors).join("\n");
    expect(logged).not.toContain("params:");
    expect(logged).not.toContain(onFailing.api_key_id);
  });

  it("answers /health/ready 503 {ok:false} while a shard fails", async () => {
    await breakTables(env.DB_SHARD_1, ["merchants"]);
    const response = await call("/health/ready");
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ ok: false });
  });

  it("refuses a registration with 503 when no shard can take it, and claims nothing", async () => {
    await breakTables(env.DB_SHARD_1, ["merchants"]);
    await breakTables(env.DB, ["merchants"]);
    const id = uniqueId();
    const smartRouter = { project_id: `test-proj_${id.replaceAll("-", "")}`, secret_key: `sk_test_${id}` };
    await registerSandboxProject(smartRouter);
    const response = await call("/admin/merchants", {
      method: "POST",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ id, name: "Nowhere", smart_router: smartRouter }),
    });
    expect(response.status).toBe(503);
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await env.DB.prepare("SELECT merchant_id FROM merchant_shards WHERE merchant_id = ?").bind(id).first()).toBeNull();
  });
});

describe("a failing shard fails only its merchants: security", () => {
  it("names the failing shard and why only to the admin token on /health/ready", async () => {
    await breakTables(env.DB_SHARD_1, ["merchants"]);
    const anonymous = await call("/health/ready", { headers: { authorization: "Bearer not-the-admin-token" } });
    expect(anonymous.status).toBe(503);
    const anonymousText = await anonymous.text();
    expect(anonymousText).toBe('{"ok":false}');
    const admin = await call("/health/ready", { headers: ADMIN });
    expect(admin.status).toBe(503);
    const body = (await admin.json()) as { ok: boolean; shards: { shard: number; binding: string; ok: boolean; reason?: string }[] };
    expect(body.ok).toBe(false);
    expect(body.shards.find((shard) => shard.shard === 0)).toMatchObject({ binding: "DB", ok: true });
    const failing = body.shards.find((shard) => shard.shard === 1);
    expect(failing).toMatchObject({ binding: "DB_SHARD_1", ok: false });
    expect(failing?.reason).toMatch(/no such table/);
  });

  it("while a shard has no credential copy, an unknown merchant and a wrong password get the same 503 (no existence oracle)", async () => {
    const onHealthy = await merchantOn(0);
    await breakTables(env.DB_SHARD_1, ["merchants"]);
    forgetWebhookCredentials();
    const unknown = await call(`/webhooks/smart-router/${uniqueId("ghost")}`, {
      method: "POST",
      headers: { authorization: basic("sr_x", "y") },
      body: '{"event_id":"ev_ghost"}',
    });
    const wrong = await deliver({ ...onHealthy, webhook: { ...onHealthy.webhook, password: "wrong" } }, { event_id: "ev_wrong" });
    expect([unknown.status, wrong.status]).toEqual([503, 503]);
    expect(unknown.headers.get("retry-after")).toBe(wrong.headers.get("retry-after"));
    // The genuine credential of the healthy shard's merchant still passes.
    expect((await deliver(onHealthy, { event_id: "ev_faultgenuine" })).status).toBe(200);
  });

  it("looks an API key up with one query on DB only, whatever the key, with the other shard down", async () => {
    const merchant = await merchantOn(0);
    const counted = { DB: 0, DB_SHARD_1: 0 };
    const counting = (db: D1Database, name: keyof typeof counted) =>
      new Proxy(db, {
        get(target, property) {
          const value: unknown = Reflect.get(target, property, target);
          if (typeof value !== "function") return value;
          if (property === "prepare") {
            return (...args: unknown[]) => {
              counted[name] += 1;
              return value.apply(target, args);
            };
          }
          return value.bind(target);
        },
      });
    await breakTables(env.DB_SHARD_1, SHARD_1_TABLES);
    const app = createApp();
    const bindings = { ...env, DB: counting(env.DB, "DB"), DB_SHARD_1: counting(env.DB_SHARD_1, "DB_SHARD_1") };
    const get = (key: string) =>
      app.fetch(new Request("https://edge.test/v1/transactions", { headers: { authorization: `Bearer ${key}` } }), bindings);
    const unknownKey = `sre_${"0".repeat(16)}_${"A".repeat(43)}`;
    expect((await get(unknownKey)).status).toBe(401);
    expect(counted).toEqual({ DB: 1, DB_SHARD_1: 0 });
    expect((await get(merchant.api_key)).status).toBe(200);
    expect(counted.DB_SHARD_1).toBe(0);
  });
});
