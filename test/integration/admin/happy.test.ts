import { describe, expect, it } from "vitest";
import { ADMIN, call, createMerchant, registerSandboxProject, uniqueId } from "../../support/fixtures";

const json = (body: unknown): RequestInit => ({ headers: { ...ADMIN, "content-type": "application/json" }, body: JSON.stringify(body) });

describe("admin API: merchants", () => {
  it("creates a merchant and returns every generated secret once", async () => {
    const id = uniqueId();
    const projectId = `test-proj_${id.replaceAll("-", "")}`;
    await registerSandboxProject({ project_id: projectId, secret_key: "sk_sandbox_secret" });
    const response = await call("/admin/merchants", {
      method: "POST",
      ...json({
        id,
        name: "Acme Ltd",
        smart_router: { project_id: projectId, secret_key: "sk_sandbox_secret" },
        fulfillment_url: "https://shop.example/fulfil",
      }),
    });
    expect(response.status).toBe(201);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const created = (await response.json()) as Record<string, never>;
    expect(created).toMatchObject({
      merchant: {
        id,
        name: "Acme Ltd",
        smart_router: { project_id: projectId },
        fulfillment_url: "https://shop.example/fulfil",
        rate_limits: null,
      },
      webhook: { path: `/webhooks/smart-router/${id}` },
    });
    expect(created.api_key).toMatch(/^sre_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(created.webhook).toMatchObject({ username: expect.stringMatching(/^sr_/), password: expect.stringMatching(/.{24,}/) });
    expect(created.fulfillment).toMatchObject({ signing_secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/=]{32}$/) });
  });

  it("reads a merchant back", async () => {
    const created = await createMerchant();
    const response = await call(`/admin/merchants/${created.merchant.id}`, { headers: ADMIN });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { merchant: Record<string, unknown> };
    expect(body.merchant).toMatchObject({ id: created.merchant.id, name: created.merchant.name, fulfillment_url: null });
  });

  it("patches name, fulfilment URL, credentials and rate limits", async () => {
    const created = await createMerchant();
    const projectId = `test-proj_renamed${created.merchant.id.replaceAll("-", "")}`;
    await registerSandboxProject({ project_id: projectId, secret_key: "sk_rotated" });
    const response = await call(`/admin/merchants/${created.merchant.id}`, {
      method: "PATCH",
      ...json({
        name: "Renamed",
        fulfillment_url: "https://shop.example/hooks",
        smart_router: { project_id: projectId, secret_key: "sk_rotated" },
        rate_limits: { primary_rpm: 600, events_rpm: 300, sandbox_rpm: 120, batch_share: 0.5 },
      }),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { merchant: Record<string, unknown> };
    expect(body.merchant).toMatchObject({
      name: "Renamed",
      fulfillment_url: "https://shop.example/hooks",
      smart_router: { project_id: projectId },
      rate_limits: { primary_rpm: 600, events_rpm: 300, sandbox_rpm: 120, batch_share: 0.5 },
    });
    // A later partial patch keeps the other limits.
    const again = await call(`/admin/merchants/${created.merchant.id}`, { method: "PATCH", ...json({ rate_limits: { events_rpm: 60 } }) });
    const later = (await again.json()) as { merchant: { rate_limits: Record<string, number> } };
    expect(later.merchant.rate_limits).toEqual({ primary_rpm: 600, events_rpm: 60, sandbox_rpm: 120, batch_share: 0.5 });
  });

  it("issues a second API key and revokes the first", async () => {
    const created = await createMerchant();
    const issued = await call(`/admin/merchants/${created.merchant.id}/api-keys`, { method: "POST", headers: ADMIN });
    expect(issued.status).toBe(201);
    const body = (await issued.json()) as { api_key: { id: string; key: string } };
    expect(body.api_key.key).toMatch(new RegExp(`^sre_${body.api_key.id}_`));
    expect(body.api_key.id).not.toBe(created.api_key_id);

    const revoked = await call(`/admin/merchants/${created.merchant.id}/api-keys/${created.api_key_id}`, {
      method: "DELETE",
      headers: ADMIN,
    });
    expect(revoked.status).toBe(200);
    expect(await revoked.json()).toMatchObject({ api_key: { id: created.api_key_id, revoked_at: expect.any(String) } });
  });
});
