import { describe, expect, it } from "vitest";
import { createMerchant } from "../../support/fixtures";
import { sinkUrl } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";
import { api, apiJson, createEndpoint, type ShownEndpoint } from "./support";

describe("endpoints: create, read, update, delete", () => {
  it("creates an endpoint with a secret shown once, sealed at rest, and reads it back without it", async () => {
    const merchant = await createMerchant();
    const created = await apiJson<{ endpoint: ShownEndpoint; signing_secret: string }>(
      merchant,
      "/v1/endpoints",
      {
        body: { url: "https://orders.example.com/hooks", events: ["transaction.captured", "transaction.refunded"], description: "orders" },
      },
      201,
    );
    expect(created.endpoint).toEqual({
      id: expect.stringMatching(/^ep_[0-9a-f]{32}$/),
      url: "https://orders.example.com/hooks",
      events: ["transaction.captured", "transaction.refunded"],
      description: "orders",
      status: "enabled",
      created_at: expect.any(String),
    });
    expect(created.signing_secret).toMatch(/^whsec_/);
    const read = await apiJson<{ endpoint: ShownEndpoint }>(merchant, `/v1/endpoints/${created.endpoint.id}`);
    expect(read.endpoint).toEqual(created.endpoint);
    expect(JSON.stringify(read)).not.toContain(created.signing_secret);
    const row = await shardedDb.prepare("SELECT * FROM endpoints WHERE id = ?").bind(created.endpoint.id).first<Record<string, unknown>>();
    expect(JSON.stringify(row)).not.toContain(created.signing_secret.slice(6));
    expect(row?.secret_key_id).toEqual(expect.any(String));
  });

  it("lists newest first in keyset pages, updates fields and status, and deletes", async () => {
    const merchant = await createMerchant();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await createEndpoint(merchant, `crud-${merchant.merchant.id}-${i}`)).endpoint.id);
    const first = await apiJson<{ endpoints: ShownEndpoint[]; next_cursor: string | null }>(merchant, "/v1/endpoints?limit=2");
    expect(first.endpoints).toHaveLength(2);
    const second = await apiJson<{ endpoints: ShownEndpoint[]; next_cursor: string | null }>(
      merchant,
      `/v1/endpoints?limit=2&cursor=${first.next_cursor}`,
    );
    expect(second.next_cursor).toBeNull();
    expect([...first.endpoints, ...second.endpoints].map((e) => e.id).sort()).toEqual([...ids].sort());

    const id = ids[0] ?? "";
    const patched = await apiJson<{ endpoint: ShownEndpoint }>(merchant, `/v1/endpoints/${id}`, {
      method: "PATCH",
      body: { url: sinkUrl("crud-other"), events: ["transaction.*"], description: "all", status: "paused" },
    });
    expect(patched.endpoint).toMatchObject({ url: sinkUrl("crud-other"), events: ["transaction.*"], description: "all", status: "paused" });
    const enabled = await apiJson<{ endpoint: ShownEndpoint }>(merchant, `/v1/endpoints/${id}`, {
      method: "PATCH",
      body: { status: "enabled" },
    });
    expect(enabled.endpoint.status).toBe("enabled");

    expect(await apiJson(merchant, `/v1/endpoints/${id}`, { method: "DELETE" })).toEqual({ id, deleted: true });
    expect((await api(merchant, `/v1/endpoints/${id}`)).status).toBe(404);
  });

  it("rotates the secret: the new one is shown once and the old one signs until the overlap ends", async () => {
    const merchant = await createMerchant();
    const { endpoint, signing_secret } = await createEndpoint(merchant, `rotate-${merchant.merchant.id}`);
    const before = Date.now();
    const rotated = await apiJson<{ signing_secret: string; previous_valid_until: string }>(
      merchant,
      `/v1/endpoints/${endpoint.id}/secret`,
      {
        body: { overlap_hours: 2 },
      },
    );
    expect(rotated.signing_secret).toMatch(/^whsec_/);
    expect(rotated.signing_secret).not.toBe(signing_secret);
    const until = Date.parse(rotated.previous_valid_until);
    expect(until).toBeGreaterThanOrEqual(before + 2 * 3_600_000);
    expect(until).toBeLessThan(Date.now() + 2 * 3_600_000 + 1000);
  });
});
