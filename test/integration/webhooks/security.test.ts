import { afterEach, describe, expect, it, vi } from "vitest";
import { basic, call, createMerchant } from "../../support/fixtures";

type Envelope = { error: { code: string; message: string } };

const body = '{"event_id":"ev_sec1"}';

async function post(path: string, authorization?: string, extra: HeadersInit = {}) {
  const headers = new Headers(extra);
  if (authorization !== undefined) headers.set("authorization", authorization);
  return call(path, { method: "POST", headers, body });
}

describe("webhook edge: credentials", async () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });
  const merchant = await createMerchant();
  const other = await createMerchant();
  const good = basic(merchant.webhook.username, merchant.webhook.password);

  const refusals: [string, string, string | undefined][] = [
    ["no Authorization header", merchant.webhook.path, undefined],
    ["a wrong password", merchant.webhook.path, basic(merchant.webhook.username, "wrong")],
    ["a wrong username", merchant.webhook.path, basic("sr_nobody", merchant.webhook.password)],
    ["another merchant's credential", merchant.webhook.path, basic(other.webhook.username, other.webhook.password)],
    ["a Basic header that is not base64", merchant.webhook.path, "Basic %%%not-base64%%%"],
    ["base64 without a colon", merchant.webhook.path, `Basic ${btoa("nocolon")}`],
    ["a Bearer token", merchant.webhook.path, `Bearer ${merchant.webhook.password}`],
    ["an unknown merchant", "/webhooks/smart-router/no-such-merchant", good],
    ["a merchant id with ../", "/webhooks/smart-router/..%2F..%2Fadmin", good],
    ["a 500-character merchant id", `/webhooks/smart-router/${"a".repeat(500)}`, good],
  ];

  it.each(refusals)("401 for %s, with the same body", async (_name, path, authorization) => {
    const response = await post(path, authorization);
    expect(response.status).toBe(401);
    const envelope = (await response.json()) as Envelope;
    expect(envelope.error.code).toBe("unauthorized");
    expect(envelope.error.message).toBe("missing or invalid webhook credential");
    expect(response.headers.get("www-authenticate")).toMatch(/^Basic/);
  });

  it("answers an unknown merchant exactly as a wrong password (no existence oracle)", async () => {
    const unknown = await post("/webhooks/smart-router/ghost-merchant", good);
    const wrong = await post(merchant.webhook.path, basic(merchant.webhook.username, "nope"));
    expect(unknown.status).toBe(wrong.status);
    const strip = (envelope: Envelope & { error: { request_id?: string } }) => ({ ...envelope.error, request_id: undefined });
    expect(strip((await unknown.json()) as Envelope)).toEqual(strip((await wrong.json()) as Envelope));
    expect([...unknown.headers.keys()].sort()).toEqual([...wrong.headers.keys()].sort());
  });

  it("does the same cryptographic work for every refusal (no timing oracle on merchants or usernames)", async () => {
    const work: Record<string, { digests: number; comparisons: number }> = {};
    const cases: [string, string, string | undefined][] = [
      ["wrong password", merchant.webhook.path, basic(merchant.webhook.username, "wrong")],
      ["unknown merchant", "/webhooks/smart-router/ghost-merchant", good],
      ["malformed merchant id", `/webhooks/smart-router/${"a".repeat(500)}`, good],
      ["no header", merchant.webhook.path, undefined],
      ["not base64", merchant.webhook.path, "Basic %%%"],
    ];
    for (const [name, path, authorization] of cases) {
      const digest = vi.spyOn(crypto.subtle, "digest");
      const compare = vi.spyOn(crypto.subtle, "timingSafeEqual");
      const response = await post(path, authorization);
      expect(response.status).toBe(401);
      work[name] = { digests: digest.mock.calls.length, comparisons: compare.mock.calls.length };
      vi.restoreAllMocks();
    }
    const reference = work["wrong password"];
    expect(reference?.digests).toBeGreaterThan(0);
    for (const [name, counts] of Object.entries(work)) expect(counts, name).toEqual(reference);
  });

  it("checks credentials before the body (an unauthenticated caller learns nothing about body validation)", async () => {
    const response = await call(merchant.webhook.path, { method: "POST", body: "not json" });
    expect(response.status).toBe(401);
  });

  it("takes the first of duplicated Authorization values as one malformed header and refuses", async () => {
    const headers = new Headers();
    headers.append("authorization", good);
    headers.append("authorization", basic("x", "y"));
    const response = await call(merchant.webhook.path, { method: "POST", headers, body });
    expect(response.status).toBe(401);
  });
});
