import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ADMIN, basic, call, createMerchant, deliver } from "../../support/fixtures";
import { shardedDb } from "../../support/shards";

/** Every admin route, with a path that names something. */
const ADMIN_ROUTES = [
  ["POST", "/admin/merchants"],
  ["GET", "/admin/merchants/acme"],
  ["PATCH", "/admin/merchants/acme"],
  ["POST", "/admin/merchants/acme/api-keys"],
  ["DELETE", "/admin/merchants/acme/api-keys/0011223344556677"],
  ["POST", "/admin/merchants/acme/webhook-credential"],
  ["POST", "/admin/merchants/acme/fulfillment-secret"],
  ["POST", "/admin/reseal"],
  ["GET", "/admin/reseal/rsl_0"],
  ["GET", "/admin/reconciliation/runs"],
  ["GET", "/admin/audit"],
  ["GET", "/admin/dead-letters"],
  ["POST", "/admin/dead-letters/redrive"],
] as const;

/** What an admin request could change: the merchant, its keys, the audit and the dead letters. */
async function adminState(merchantId: string): Promise<string> {
  const results = await shardedDb.batch([
    shardedDb.prepare("SELECT * FROM merchants WHERE id = ?").bind(merchantId),
    shardedDb.prepare("SELECT * FROM api_keys WHERE merchant_id = ? ORDER BY id").bind(merchantId),
    shardedDb.prepare("SELECT count(*) AS n, max(at) AS last FROM admin_audit"),
    shardedDb.prepare("SELECT id, redriven_at FROM dead_letters WHERE merchant_id = ? ORDER BY id").bind(merchantId),
  ]);
  return JSON.stringify(results.map((result) => result.results));
}

describe("admin API: security", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it.each([
    ["no Authorization", {}],
    ["a wrong token", { authorization: "Bearer wrong-token-wrong-token" }],
    ["the token as Basic", { authorization: basic("admin", env.ADMIN_TOKEN) }],
    ["an empty Bearer", { authorization: "Bearer " }],
    ["the token with a suffix", { authorization: `Bearer ${env.ADMIN_TOKEN}x` }],
  ])("401 with %s, on every admin route", async (_name, headers) => {
    for (const [method, path] of ADMIN_ROUTES) {
      const response = await call(path, { method, headers, body: method === "GET" || method === "DELETE" ? undefined : "{}" });
      expect(response.status, `${method} ${path}`).toBe(401);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    }
  });

  it("a refused request changes nothing, on every route, even with a valid body for a real merchant", async () => {
    const created = await createMerchant();
    const id = created.merchant.id;
    await shardedDb
      .prepare(
        "INSERT INTO dead_letters (id, queue, merchant_id, body, error, attempts) VALUES (?, 'smart-router-webhooks', ?, '{}', 'x', 1)",
      )
      .bind(`dl_sec_${id}`, id)
      .run();
    const bodies: Record<string, unknown> = {
      "/admin/merchants": { id: `${id}-b`, name: "B", smart_router: { project_id: "test-proj_secb", secret_key: "sk" } },
      [`/admin/merchants/${id}`]: { name: "Taken over", fulfillment_url: "https://evil.example/x" },
      [`/admin/merchants/${id}/webhook-credential`]: { overlap_hours: 0 },
      [`/admin/merchants/${id}/fulfillment-secret`]: { overlap_hours: 0 },
      "/admin/dead-letters/redrive": { merchant: id },
    };
    const before = await adminState(id);
    for (const [method, template] of ADMIN_ROUTES) {
      const path = template.replace("acme", id).replace("0011223344556677", created.api_key_id);
      for (const authorization of [undefined, "Bearer wrong-token-wrong-token", `Bearer ${env.ADMIN_TOKEN.slice(0, -1)}`]) {
        const response = await call(path, {
          method,
          headers: authorization ? { authorization, "content-type": "application/json" } : { "content-type": "application/json" },
          body: method === "GET" || method === "DELETE" ? undefined : JSON.stringify(bodies[path] ?? {}),
        });
        expect(response.status, `${method} ${path}`).toBe(401);
      }
    }
    expect(await adminState(id)).toBe(before);
    // The old webhook password and API key still work: nothing was rotated or revoked.
    expect((await deliver(created, { event_id: "ev_secstill" })).status).toBe(200);
  });

  it("never shows a secret again after creation", async () => {
    const created = await createMerchant({ fulfillment_url: "https://shop.example/f" });
    const secrets = [created.api_key, created.webhook.password, created.fulfillment.signing_secret, `sk_test_${created.merchant.id}`];
    const responses = [
      await call(`/admin/merchants/${created.merchant.id}`, { headers: ADMIN }),
      await call(`/admin/merchants/${created.merchant.id}`, { method: "PATCH", headers: ADMIN, body: JSON.stringify({ name: "N" }) }),
    ];
    for (const response of responses) {
      const text = await response.text();
      for (const secret of secrets) expect(text).not.toContain(secret);
      expect(text).not.toMatch(/ciphertext|hash|secret_key|password/i);
    }
  });

  it("stores the Smart Router secret key encrypted and API keys and webhook password only as hashes", async () => {
    const created = await createMerchant();
    const secretKey = `sk_test_${created.merchant.id}`;
    const merchantRow = await shardedDb
      .prepare("SELECT * FROM merchants WHERE id = ?")
      .bind(created.merchant.id)
      .first<Record<string, string>>();
    const keyRows = await shardedDb
      .prepare("SELECT * FROM api_keys WHERE merchant_id = ?")
      .bind(created.merchant.id)
      .all<Record<string, string>>();
    const stored = JSON.stringify([merchantRow, keyRows.results]);
    for (const secret of [secretKey, created.api_key, created.webhook.password, created.fulfillment.signing_secret]) {
      expect(stored).not.toContain(secret);
      expect(stored).not.toContain(btoa(secret));
    }
    // Random IV: the same secret sealed twice (for two projects sharing a key) gives different ciphertexts.
    const suffix = created.merchant.id.replaceAll("-", "");
    const twin = await createMerchant({ smart_router: { project_id: `test-proj_twin${suffix}`, secret_key: "sk_same" } });
    const triplet = await createMerchant({ smart_router: { project_id: `test-proj_triplet${suffix}`, secret_key: "sk_same" } });
    const sealedOf = (merchantId: string) =>
      shardedDb
        .prepare("SELECT smart_router_secret_ciphertext AS c, smart_router_secret_key_id AS k FROM merchants WHERE id = ?")
        .bind(merchantId)
        .first<{ c: string; k: string }>();
    const ciphertexts = { results: [await sealedOf(twin.merchant.id), await sealedOf(triplet.merchant.id)].filter((row) => row !== null) };
    expect(ciphertexts.results).toHaveLength(2);
    expect(ciphertexts.results[0]?.c).not.toBe(ciphertexts.results[1]?.c);
    expect(ciphertexts.results[0]?.k).toMatch(/^[0-9a-f]{12}$/);
  });

  it("logs no credential while creating a merchant and accepting a delivery", async () => {
    const lines: string[] = [];
    for (const level of ["log", "warn", "error", "info", "debug"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        lines.push(args.map(String).join(" "));
      });
    }
    const created = await createMerchant();
    await deliver(created, { event_id: "ev_logcheck" });
    await deliver(created, { event_id: "ev_logcheck" }, { authorization: basic(created.webhook.username, "wrong-password") });
    const output = lines.join("\n");
    expect(output).toContain("webhook.delivery");
    for (const secret of [created.api_key, created.webhook.password, "wrong-password", `sk_test_${created.merchant.id}`, env.ADMIN_TOKEN]) {
      expect(output).not.toContain(secret);
    }
  });
});
