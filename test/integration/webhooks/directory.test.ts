import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../../../src/app";
import { forgetWebhookCredentials } from "../../../src/merchants/credential-directory";
import { hashCredential } from "../../../src/security/credentials";
import { basic, createMerchant, uniqueId } from "../../support/fixtures";
import { SHARDS, shardedDb } from "../../support/shards";

/** The app over a D1 binding that counts the statements it is given (each query prepares one). */
function countingApp(failing = false) {
  const counted = { statements: 0 };
  // Every shard is counted: the directory loads each one's merchants (src/db/shards.ts).
  const counting = (db: D1Database) =>
    new Proxy(db, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (typeof value !== "function") return value;
        if (property === "prepare" || property === "exec") {
          return (...args: unknown[]) => {
            counted.statements += 1;
            if (failing) throw new Error("D1 unavailable");
            return value.apply(target, args);
          };
        }
        return value.bind(target);
      },
    });
  const app = createApp({ deliveryQueue: () => ({ send: async () => {}, wake: async () => {} }) });
  const bindings = { ...env, DB: counting(env.DB), DB_SHARD_1: counting(env.DB_SHARD_1) };
  /** Posts one delivery; answers its status and the D1 statements it cost. */
  const post = async (path: string, authorization: string | undefined) => {
    const before = counted.statements;
    const headers = new Headers();
    if (authorization !== undefined) headers.set("authorization", authorization);
    const response = await app.fetch(
      new Request(`https://edge.test${path}`, { method: "POST", headers, body: '{"event_id":"ev_dir1"}' }),
      bindings,
    );
    await response.body?.cancel();
    return { status: response.status, statements: counted.statements - before };
  };
  return { post, counted };
}

afterEach(() => {
  vi.restoreAllMocks();
  // A failed load with no copy is not retried for 5 s: the next test starts from a fresh directory.
  forgetWebhookCredentials();
});

describe("webhook edge: equal timing by construction (the credential directory)", () => {
  it("costs the same D1 statements (none) for a refusal whether the merchant exists, was seen before, or never was", async () => {
    const seen = await createMerchant();
    const neverDeliveredTo = await createMerchant();
    const app = countingApp();
    // The isolate has served a delivery for `seen` already (the old per-id cache then held it).
    expect((await app.post(seen.webhook.path, basic(seen.webhook.username, "wrong"))).status).toBe(401);

    const unknownPath = `/webhooks/smart-router/${uniqueId("ghost")}`;
    const cases: [string, string, string | undefined][] = [
      ["known merchant seen before, wrong password", seen.webhook.path, basic(seen.webhook.username, "wrong")],
      ["unknown id seen for the first time", unknownPath, basic(seen.webhook.username, seen.webhook.password)],
      ["the same unknown id again", unknownPath, basic(seen.webhook.username, seen.webhook.password)],
      ["known merchant never delivered to, wrong password", neverDeliveredTo.webhook.path, basic(neverDeliveredTo.webhook.username, "x")],
      ["another unknown id, first time", `/webhooks/smart-router/${uniqueId("ghost")}`, undefined],
      ["an id that cannot be a merchant's", `/webhooks/smart-router/${"a".repeat(500)}`, basic("a", "b")],
    ];
    const cost: Record<string, number> = {};
    for (const [name, path, authorization] of cases) {
      const answer = await app.post(path, authorization);
      expect(answer.status, name).toBe(401);
      cost[name] = answer.statements;
    }
    const reference = cost["known merchant seen before, wrong password"];
    for (const [name, statements] of Object.entries(cost)) expect(statements, name).toBe(reference);
    expect(reference).toBe(0);
  });

  it("loads every credential in one query, then answers any number of ids from memory", async () => {
    const merchant = await createMerchant();
    const app = countingApp();
    forgetWebhookCredentials();
    expect(await app.post(merchant.webhook.path, basic(merchant.webhook.username, "wrong"))).toEqual({
      status: 401,
      statements: SHARDS.length,
    });
    let statements = 0;
    for (let i = 0; i < 20; i++) statements += (await app.post(`/webhooks/smart-router/${uniqueId("probe")}`, basic("u", "p"))).statements;
    expect(statements).toBe(0);
    expect(await app.post(merchant.webhook.path, basic(merchant.webhook.username, merchant.webhook.password))).toEqual({
      status: 200,
      statements: 0,
    });
  });

  it("refreshes as one unit after a minute: a change made by another isolate is seen then, whatever id asks", async () => {
    const merchant = await createMerchant();
    const app = countingApp();
    const good = basic(merchant.webhook.username, merchant.webhook.password);
    expect((await app.post(merchant.webhook.path, good)).status).toBe(200);
    // Another isolate rotated the password (straight in D1: this isolate was not told).
    const replacement = "replaced-by-another-isolate";
    await shardedDb
      .prepare("UPDATE merchants SET webhook_password_hash = ? WHERE id = ?")
      .bind(await hashCredential(replacement), merchant.merchant.id)
      .run();
    const next = basic(merchant.webhook.username, replacement);
    expect(await app.post(merchant.webhook.path, next)).toEqual({ status: 401, statements: 0 });

    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, "now").mockImplementation(() => realNow() + 61_000);
    // The first request after the minute reloads (one query), an unknown id as much as a known one.
    expect(await app.post(`/webhooks/smart-router/${uniqueId("ghost")}`, next)).toEqual({ status: 401, statements: SHARDS.length });
    expect(await app.post(merchant.webhook.path, next)).toEqual({ status: 200, statements: 0 });
    expect(await app.post(merchant.webhook.path, good)).toEqual({ status: 401, statements: 0 });
  });

  it("concurrent requests on an empty directory share one load", async () => {
    const merchant = await createMerchant();
    const app = countingApp();
    forgetWebhookCredentials();
    const good = basic(merchant.webhook.username, merchant.webhook.password);
    const answers = await Promise.all(Array.from({ length: 10 }, () => app.post(merchant.webhook.path, good)));
    expect(answers.map((answer) => answer.status)).toEqual(Array(10).fill(200));
    expect(app.counted.statements).toBe(SHARDS.length);
  });

  it("keeps serving the last directory when a reload fails, and tries again within seconds", async () => {
    const merchant = await createMerchant();
    const good = basic(merchant.webhook.username, merchant.webhook.password);
    expect((await countingApp().post(merchant.webhook.path, good)).status).toBe(200);
    const realNow = Date.now.bind(Date);
    let offset = 61_000;
    vi.spyOn(Date, "now").mockImplementation(() => realNow() + offset);
    const warnings = vi.spyOn(console, "warn");
    const down = countingApp(true);
    expect(await down.post(merchant.webhook.path, good)).toEqual({ status: 200, statements: SHARDS.length });
    expect(warnings.mock.calls.map(([line]) => String(line)).join("\n")).toContain("webhook.credentials_reload_failed");
    expect(await down.post(merchant.webhook.path, good)).toEqual({ status: 200, statements: 0 });
    offset += 6_000;
    expect((await countingApp().post(merchant.webhook.path, good)).statements).toBe(SHARDS.length);
  });

  it("without any directory yet, a D1 failure is a 503 (Smart Router retries), never a 2xx, a 401 or a 500", async () => {
    const merchant = await createMerchant();
    forgetWebhookCredentials();
    const answer = await countingApp(true).post(merchant.webhook.path, basic(merchant.webhook.username, merchant.webhook.password));
    expect(answer.status).toBe(503);
  });
});
