import { describe, expect, it } from "vitest";
import { ADMIN, call, createMerchant, registerSandboxProject, uniqueId } from "../../support/fixtures";

const post = (path: string, body: string) =>
  call(path, { method: "POST", headers: { ...ADMIN, "content-type": "application/json" }, body });

async function expectCode(response: Response, status: number, code: string) {
  expect(response.status).toBe(status);
  const body = (await response.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  return body.error.message;
}

const valid = () => ({ id: uniqueId(), name: "Valid", smart_router: { project_id: "test-proj_x1", secret_key: "sk" } });

describe("admin API: bad input", () => {
  it.each([
    ["empty body", () => ""],
    ["not JSON", () => "{"],
    ["an array", () => "[]"],
    ["unknown top-level field", () => JSON.stringify({ ...valid(), plan: "gold" })],
    ["unknown nested field", () => JSON.stringify({ ...valid(), smart_router: { project_id: "proj_1", secret_key: "k", region: "eu" } })],
    ["missing name", () => JSON.stringify({ ...valid(), name: undefined })],
    ["missing smart_router", () => JSON.stringify({ ...valid(), smart_router: undefined })],
    ["an id with capitals", () => JSON.stringify({ ...valid(), id: "Acme" })],
    ["an id with ../", () => JSON.stringify({ ...valid(), id: "../etc" })],
    ["a 65-character id", () => JSON.stringify({ ...valid(), id: "a".repeat(65) })],
    ["a project id of the wrong shape", () => JSON.stringify({ ...valid(), smart_router: { project_id: "acme", secret_key: "k" } })],
    ["a fulfilment URL that is not http(s)", () => JSON.stringify({ ...valid(), fulfillment_url: "ftp://x.example/a" })],
    ["a name of wrong type", () => JSON.stringify({ ...valid(), name: 42 })],
  ])("POST /admin/merchants: 400 for %s", async (_name, body) => {
    const message = await expectCode(await post("/admin/merchants", body()), 400, "invalid_body");
    expect(message.length).toBeGreaterThan(0);
  });

  it("names the offending field", async () => {
    const message = await expectCode(await post("/admin/merchants", JSON.stringify({ ...valid(), plan: "gold" })), 400, "invalid_body");
    expect(message).toContain("plan");
  });

  it("422 naming the problem when Smart Router refuses the credentials, and nothing is stored", async () => {
    await registerSandboxProject({ project_id: "test-proj_probe1", secret_key: "sk_right" });
    const body = { id: uniqueId(), name: "Wrong key", smart_router: { project_id: "test-proj_probe1", secret_key: "sk_wrong" } };
    const message = await expectCode(await post("/admin/merchants", JSON.stringify(body)), 422, "credentials_refused");
    expect(message).toMatch(/401.*test-proj_probe1/);
    expect(message).not.toContain("sk_wrong");
    expect((await call(`/admin/merchants/${body.id}`, { headers: ADMIN })).status).toBe(404);
    const unknown = { ...body, id: uniqueId(), smart_router: { project_id: "test-proj_nobodyknows", secret_key: "sk" } };
    await expectCode(await post("/admin/merchants", JSON.stringify(unknown)), 422, "credentials_refused");
  });

  it("409 for an existing id", async () => {
    const created = await createMerchant();
    const body = { ...valid(), id: created.merchant.id };
    await expectCode(await post("/admin/merchants", JSON.stringify(body)), 409, "conflict");
  });

  it("404 for an unknown or malformed merchant", async () => {
    await expectCode(await call("/admin/merchants/nobody-here", { headers: ADMIN }), 404, "not_found");
    await expectCode(await call(`/admin/merchants/${"x".repeat(500)}`, { headers: ADMIN }), 404, "not_found");
    await expectCode(await call("/admin/merchants/nobody-here/api-keys", { method: "POST", headers: ADMIN }), 404, "not_found");
  });

  it("PATCH: 400 for an empty change, unknown fields and bad limits", async () => {
    const created = await createMerchant();
    const patch = (body: unknown) =>
      call(`/admin/merchants/${created.merchant.id}`, { method: "PATCH", headers: ADMIN, body: JSON.stringify(body) });
    await expectCode(await patch({}), 400, "invalid_body");
    await expectCode(await patch({ id: "other" }), 400, "invalid_body");
    await expectCode(await patch({ rate_limits: { primary_rpm: 0 } }), 400, "invalid_body");
    await expectCode(await patch({ rate_limits: { batch_share: 1.5 } }), 400, "invalid_body");
    await expectCode(await patch({ rate_limits: { burst: 5 } }), 400, "invalid_body");
  });

  it("404 when revoking a key that is not the merchant's or already revoked", async () => {
    const a = await createMerchant();
    const b = await createMerchant();
    await expectCode(
      await call(`/admin/merchants/${a.merchant.id}/api-keys/${b.api_key_id}`, { method: "DELETE", headers: ADMIN }),
      404,
      "not_found",
    );
    await call(`/admin/merchants/${a.merchant.id}/api-keys/${a.api_key_id}`, { method: "DELETE", headers: ADMIN });
    await expectCode(
      await call(`/admin/merchants/${a.merchant.id}/api-keys/${a.api_key_id}`, { method: "DELETE", headers: ADMIN }),
      404,
      "not_found",
    );
  });
});
