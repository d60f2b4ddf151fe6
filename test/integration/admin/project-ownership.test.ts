import { describe, expect, it } from "vitest";
import { ADMIN, call, createMerchant, registerSandboxProject, uniqueId } from "../../support/fixtures";
import { SHARDS, shardedDb } from "../../support/shards";

type Envelope = { error: { code: string; message: string } };

const json = (body: unknown): RequestInit => ({ headers: { ...ADMIN, "content-type": "application/json" }, body: JSON.stringify(body) });

/** Merchants on the project, on every shard together. */
const countOn = async (projectId: string) => {
  let n = 0;
  for (const shard of SHARDS) {
    const row = await shard
      .prepare("SELECT count(*) AS n FROM merchants WHERE smart_router_project_id = ?")
      .bind(projectId)
      .first<{ n: number }>();
    n += row?.n ?? 0;
  }
  return n;
};

describe("admin API: a Smart Router project belongs to one merchant", () => {
  it("POST: 409 naming the project and its merchant, and nothing stored", async () => {
    const first = await createMerchant();
    const projectId = `test-proj_${first.merchant.id.replaceAll("-", "")}`;
    const id = uniqueId();
    const response = await call("/admin/merchants", {
      method: "POST",
      ...json({ id, name: "Second", smart_router: { project_id: projectId, secret_key: `sk_test_${first.merchant.id}` } }),
    });
    expect(response.status).toBe(409);
    const envelope = (await response.json()) as Envelope;
    expect(envelope.error.code).toBe("conflict");
    expect(envelope.error.message).toContain(projectId);
    expect(envelope.error.message).toContain(first.merchant.id);
    expect(envelope.error.message).not.toContain("already exists");
    expect((await call(`/admin/merchants/${id}`, { headers: ADMIN })).status).toBe(404);
    expect(await countOn(projectId)).toBe(1);
  });

  it("PATCH: 409 onto another merchant's project; its own project again is fine", async () => {
    const a = await createMerchant();
    const b = await createMerchant();
    const aProject = `test-proj_${a.merchant.id.replaceAll("-", "")}`;
    const bProject = `test-proj_${b.merchant.id.replaceAll("-", "")}`;
    const onto = await call(`/admin/merchants/${b.merchant.id}`, {
      method: "PATCH",
      ...json({ smart_router: { project_id: aProject, secret_key: `sk_test_${a.merchant.id}` } }),
    });
    expect(onto.status).toBe(409);
    expect(((await onto.json()) as Envelope).error.message).toContain(aProject);
    const row = await shardedDb.prepare("SELECT smart_router_project_id AS p FROM merchants WHERE id = ?").bind(b.merchant.id).first();
    expect(row).toEqual({ p: bProject });

    const own = await call(`/admin/merchants/${b.merchant.id}`, {
      method: "PATCH",
      ...json({ smart_router: { project_id: bProject, secret_key: `sk_test_${b.merchant.id}` } }),
    });
    expect(own.status).toBe(200);
  });

  it("two registrations racing onto one project: one 201, one 409 (never a 500 or 'already exists')", async () => {
    const projectId = `test-proj_race${uniqueId().replaceAll("-", "")}`;
    const secretKey = "sk_race";
    await registerSandboxProject({ project_id: projectId, secret_key: secretKey });
    const bodies = [uniqueId(), uniqueId(), uniqueId()].map((id) => ({
      id,
      name: id,
      smart_router: { project_id: projectId, secret_key: secretKey },
    }));
    const responses = await Promise.all(bodies.map((body) => call("/admin/merchants", { method: "POST", ...json(body) })));
    const statuses = responses.map((response) => response.status).sort();
    expect(statuses).toEqual([201, 409, 409]);
    for (const response of responses.filter((r) => r.status === 409)) {
      const message = ((await response.json()) as Envelope).error.message;
      expect(message).toContain(projectId);
    }
    expect(await countOn(projectId)).toBe(1);
  });

  it("an existing id is still a 409 saying so", async () => {
    const created = await createMerchant();
    const response = await call("/admin/merchants", {
      method: "POST",
      ...json({ id: created.merchant.id, name: "Again", smart_router: { project_id: "test-proj_other1", secret_key: "sk" } }),
    });
    expect(response.status).toBe(409);
    expect(((await response.json()) as Envelope).error.message).toBe(`merchant ${created.merchant.id} already exists`);
  });
});
