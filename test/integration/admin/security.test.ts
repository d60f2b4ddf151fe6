import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ADMIN, basic, call, createMerchant, deliver } from "../../support/fixtures";

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
    for (const [method, path] of [
      ["POST", "/admin/merchants"],
      ["GET", "/admin/merchants/acme"],
      ["PATCH", "/admin/merchants/acme"],
      ["POST", "/admin/merchants/acme/api-keys"],
      ["DELETE", "/admin/merchants/acme/api-keys/0011223344556677"],
    ] as const) {
      const response = await call(path, { method, headers, body: method === "GET" || method === "DELETE" ? undefined : "{}" });
      expect(response.status, `${method} ${path}`).toBe(401);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    }
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
    const merchantRow = await env.DB.prepare("SELECT * FROM merchants WHERE id = ?")
      .bind(created.merchant.id)
      .first<Record<string, string>>();
    const keyRows = await env.DB.prepare("SELECT * FROM api_keys WHERE merchant_id = ?")
      .bind(created.merchant.id)
      .all<Record<string, string>>();
    const stored = JSON.stringify([merchantRow, keyRows.results]);
    for (const secret of [secretKey, created.api_key, created.webhook.password, created.fulfillment.signing_secret]) {
      expect(stored).not.toContain(secret);
      expect(stored).not.toContain(btoa(secret));
    }
    // Random IV: the same secret sealed twice gives different ciphertexts.
    const twin = await createMerchant({ smart_router: { project_id: "test-proj_twin", secret_key: "sk_same" } });
    const triplet = await createMerchant({ smart_router: { project_id: "test-proj_twin", secret_key: "sk_same" } });
    const ciphertexts = await env.DB.prepare(
      "SELECT smart_router_secret_ciphertext AS c, smart_router_secret_key_id AS k FROM merchants WHERE id IN (?, ?)",
    )
      .bind(twin.merchant.id, triplet.merchant.id)
      .all<{ c: string; k: string }>();
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
