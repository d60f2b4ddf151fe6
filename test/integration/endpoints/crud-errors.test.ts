import { describe, expect, it } from "vitest";
import { appWithVars } from "../../support/app";
import { createMerchant } from "../../support/fixtures";
import { api, createEndpoint } from "./support";

const errorOf = async (response: Response) => ((await response.json()) as { error: { code: string; message: string } }).error;

describe("endpoints: errors", () => {
  it("refuses a URL fulfillment_url would refuse, naming the field", async () => {
    const merchant = await createMerchant();
    for (const url of [
      "http://orders.example.com/h",
      "https://10.0.0.1/h",
      "https://user:pw@orders.example.com/h",
      "https://intranet/h",
      "nope",
    ]) {
      const response = await api(merchant, "/v1/endpoints", { body: { url, events: ["*"] } });
      expect(response.status, url).toBe(400);
      const error = await errorOf(response);
      expect(error.code).toBe("invalid_body");
      expect(error.message, url).toContain("url");
    }
  });

  it("refuses a loopback URL unless ALLOW_LOOPBACK_FULFILLMENT_URLS is true", async () => {
    const merchant = await createMerchant();
    const production = appWithVars({ ALLOW_LOOPBACK_FULFILLMENT_URLS: undefined });
    const response = await production("/v1/endpoints", {
      method: "POST",
      headers: { authorization: `Bearer ${merchant.api_key}`, "content-type": "application/json" },
      body: JSON.stringify({ url: "http://127.0.0.1:9000/h", events: ["*"] }),
    });
    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toMatch(/^url: a loopback URL/);
    expect((await api(merchant, "/v1/endpoints", { body: { url: "http://127.0.0.1:9000/h", events: ["*"] } })).status).toBe(201);
  });

  it("refuses unknown event patterns, empty events, unknown fields and an empty PATCH", async () => {
    const merchant = await createMerchant();
    for (const events of [[], ["transaction.**"], ["payment.captured"], ["*", 3]]) {
      const response = await api(merchant, "/v1/endpoints", { body: { url: "https://a.example.com/h", events } });
      expect(response.status, JSON.stringify(events)).toBe(400);
    }
    expect((await api(merchant, "/v1/endpoints", { body: { url: "https://a.example.com/h", events: ["*"], secret: "x" } })).status).toBe(
      400,
    );
    const { endpoint } = await createEndpoint(merchant, `errors-${merchant.merchant.id}`);
    expect((await api(merchant, `/v1/endpoints/${endpoint.id}`, { method: "PATCH", body: {} })).status).toBe(400);
    expect((await api(merchant, `/v1/endpoints/${endpoint.id}`, { method: "PATCH", body: { status: "disabled" } })).status).toBe(400);
  });

  it("takes at most 10 endpoints per merchant (409), and one more once one is deleted", async () => {
    const merchant = await createMerchant();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await createEndpoint(merchant, `max-${i}`)).endpoint.id);
    const eleventh = await api(merchant, "/v1/endpoints", { body: { url: "https://a.example.com/h", events: ["*"] } });
    expect(eleventh.status).toBe(409);
    expect((await errorOf(eleventh)).code).toBe("conflict");
    await api(merchant, `/v1/endpoints/${ids[0]}`, { method: "DELETE" });
    expect((await api(merchant, "/v1/endpoints", { body: { url: "https://a.example.com/h", events: ["*"] } })).status).toBe(201);
  });

  it("answers 404 for an unknown or malformed endpoint id and 400 for a malformed query", async () => {
    const merchant = await createMerchant();
    const unknown = `ep_${"0".repeat(32)}`;
    for (const [method, path] of [
      ["GET", `/v1/endpoints/${unknown}`],
      ["DELETE", `/v1/endpoints/${unknown}`],
      ["GET", `/v1/endpoints/${unknown}/messages`],
    ] as const) {
      expect((await api(merchant, path, { method })).status, `${method} ${path}`).toBe(404);
    }
    // A malformed id names no endpoint: the same 404 as an unknown one (http/validation.ts).
    expect((await api(merchant, "/v1/endpoints/not-an-id")).status).toBe(404);
    expect((await api(merchant, "/v1/endpoints?bogus=1")).status).toBe(400);
    expect((await api(merchant, "/v1/endpoints?cursor=garbage")).status).toBe(400);
  });
});
