import { describe, expect, it } from "vitest";
import { appWithVars } from "../../support/app";
import { ADMIN, call, createMerchant, registerSandboxProject, uniqueId } from "../../support/fixtures";
import { shardedDb } from "../../support/shards";

type Envelope = { error: { code: string; message: string } };

const json = (body: unknown): RequestInit => ({ headers: { ...ADMIN, "content-type": "application/json" }, body: JSON.stringify(body) });

async function newMerchantBody(fulfillmentUrl: string) {
  const id = uniqueId();
  const smartRouter = { project_id: `test-proj_${id.replaceAll("-", "")}`, secret_key: `sk_${id}` };
  await registerSandboxProject(smartRouter);
  return { id, name: `Merchant ${id}`, smart_router: smartRouter, fulfillment_url: fulfillmentUrl };
}

const REFUSED = [
  ["plain http", "http://shop.example/hook"],
  ["an IPv4 literal", "https://127.0.0.1/hook"],
  ["the metadata address", "https://169.254.169.254/latest/meta-data"],
  ["IPv4 in hex", "https://0x7f000001/hook"],
  ["IPv4 as one decimal number", "https://2130706433/hook"],
  ["IPv4 in octal", "https://0177.0.0.1/hook"],
  ["IPv4 shortened", "https://127.1/hook"],
  ["a private IPv4", "https://10.0.0.5/hook"],
  ["IPv6 loopback", "https://[::1]/hook"],
  ["IPv6 mapped IPv4", "https://[::ffff:169.254.169.254]/hook"],
  ["a single-label host", "https://intranet/hook"],
  ["localhost over https without the switch", "https://localhost/hook"],
  ["a .localhost name", "https://shop.localhost/hook"],
  ["a .internal name", "https://metadata.google.internal/computeMetadata"],
  ["user info", "https://user:pass@shop.example/hook"],
  ["an empty user info", "https://@shop.example/hook"],
  ["user info before an IP", "https://shop.example@127.0.0.1/hook"],
  ["a host with an underscore", "https://my_shop.example/hook"],
  ["a numeric top-level label", "https://shop.123/hook"],
  ["not a URL", "shop.example/hook"],
  ["ftp", "ftp://shop.example/hook"],
  ["javascript", "javascript:alert(1)"],
  ["loopback http without the switch", "http://127.0.0.1:8788/_sandbox/sink/x"],
  ["localhost http without the switch", "http://localhost:8788/_sandbox/sink/x"],
] as const;

describe("admin API: fulfillment_url is a public https endpoint", () => {
  // The tests' own configuration allows loopback URLs (vitest.config.ts); production's does not.
  const production = appWithVars({ ALLOW_LOOPBACK_FULFILLMENT_URLS: undefined });

  it.each(REFUSED)("POST and PATCH: 400 naming fulfillment_url for %s, and nothing stored", async (_name, url) => {
    const body = await newMerchantBody(url);
    const created = await production("/admin/merchants", { method: "POST", ...json(body) });
    expect(created.status).toBe(400);
    const envelope = (await created.json()) as Envelope;
    expect(envelope.error.code).toBe("invalid_body");
    expect(envelope.error.message).toMatch(/^fulfillment_url: /);
    expect((await call(`/admin/merchants/${body.id}`, { headers: ADMIN })).status).toBe(404);

    const existing = await createMerchant({ fulfillment_url: "https://shop.example/kept" });
    const patched = await production(`/admin/merchants/${existing.merchant.id}`, { method: "PATCH", ...json({ fulfillment_url: url }) });
    expect(patched.status).toBe(400);
    expect(((await patched.json()) as Envelope).error.message).toMatch(/^fulfillment_url: /);
    const row = await shardedDb.prepare("SELECT fulfillment_url FROM merchants WHERE id = ?").bind(existing.merchant.id).first();
    expect(row).toEqual({ fulfillment_url: "https://shop.example/kept" });
  });

  it.each([
    "https://shop.example/hook",
    "https://hooks.shop.example:8443/a/b?c=d",
    "https://xn--bcher-kva.example/hook",
    "https://SHOP.Example/Hook",
  ])("accepts %s", async (url) => {
    const response = await production("/admin/merchants", { method: "POST", ...json(await newMerchantBody(url)) });
    expect(response.status).toBe(201);
  });

  it("accepts loopback http only where ALLOW_LOOPBACK_FULFILLMENT_URLS is true", async () => {
    for (const url of ["http://127.0.0.1:8788/_sandbox/sink/a", "http://localhost:8788/_sandbox/sink/b"]) {
      const response = await appWithVars({ ALLOW_LOOPBACK_FULFILLMENT_URLS: "true" })("/admin/merchants", {
        method: "POST",
        ...json(await newMerchantBody(url)),
      });
      expect(response.status, url).toBe(201);
    }
    // Even with the switch, a loopback address in another notation or another private address stays refused.
    const other = await appWithVars({ ALLOW_LOOPBACK_FULFILLMENT_URLS: "true" })("/admin/merchants", {
      method: "POST",
      ...json(await newMerchantBody("http://169.254.169.254/")),
    });
    expect(other.status).toBe(400);
  });

  it("refuses to start with a malformed ALLOW_LOOPBACK_FULFILLMENT_URLS", async () => {
    const response = await appWithVars({ ALLOW_LOOPBACK_FULFILLMENT_URLS: "yes" })("/admin/merchants/x", { headers: ADMIN });
    expect(response.status).toBe(500);
  });
});
