import { describe, expect, it } from "vitest";
import { call } from "../support/fixtures";

describe("health", () => {
  it("answers /health without bindings", async () => {
    const response = await call("/health");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true });
  });

  it("checks D1 on /health/ready", async () => {
    const response = await call("/health/ready");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true });
  });

  it("answers unknown routes with the error envelope", async () => {
    const response = await call("/nope");
    expect(response.status).toBe(404);
    const body = (await response.json()) as { error: { code: string; request_id: string } };
    expect(body.error.code).toBe("not_found");
    expect(body.error.request_id).toMatch(/.+/);
  });
});
