import { describe, expect, it } from "vitest";
import { call, createMerchant } from "../../support/fixtures";
import { api, createEndpoint } from "./support";

describe("endpoints: security", () => {
  it("needs an API key", async () => {
    expect((await call("/v1/endpoints")).status).toBe(401);
    expect((await call("/v1/endpoints", { method: "POST", body: "{}" })).status).toBe(401);
    expect((await api("sre_0000000000000000_bogus", "/v1/endpoints")).status).toBe(401);
  });

  it("another merchant's endpoint is a plain 404 on every route, and is left unchanged", async () => {
    const owner = await createMerchant();
    const other = await createMerchant();
    const { endpoint } = await createEndpoint(owner, `security-${owner.merchant.id}`);
    const since = new Date(Date.now() - 60_000).toISOString();
    const until = new Date(Date.now() + 60_000).toISOString();
    const attempts: [string, string, unknown?][] = [
      ["GET", `/v1/endpoints/${endpoint.id}`],
      ["PATCH", `/v1/endpoints/${endpoint.id}`, { status: "paused" }],
      ["DELETE", `/v1/endpoints/${endpoint.id}`],
      ["POST", `/v1/endpoints/${endpoint.id}/secret`, {}],
      ["POST", `/v1/endpoints/${endpoint.id}/replay`, { since, until, dry_run: true }],
      ["GET", `/v1/endpoints/${endpoint.id}/messages`],
    ];
    for (const [method, path, body] of attempts) {
      const response = await api(other, path, { method, body });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("not_found");
    }
    const listed = (await (await api(other, "/v1/endpoints")).json()) as { endpoints: unknown[] };
    expect(listed.endpoints).toEqual([]);
    const mine = (await (await api(owner, `/v1/endpoints/${endpoint.id}`)).json()) as { endpoint: { status: string } };
    expect(mine.endpoint.status).toBe("enabled");
  });

  it("never shows a signing secret outside the create and rotate answers", async () => {
    const merchant = await createMerchant();
    const { endpoint, signing_secret } = await createEndpoint(merchant, `secret-${merchant.merchant.id}`);
    for (const path of ["/v1/endpoints", `/v1/endpoints/${endpoint.id}`, `/v1/endpoints/${endpoint.id}/messages`]) {
      const text = await (await api(merchant, path)).text();
      expect(text, path).not.toContain(signing_secret);
      expect(text, path).not.toContain("whsec_");
    }
  });
});
