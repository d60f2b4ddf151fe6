import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, call, createMerchant, registerSandboxProject, uniqueId } from "../../support/fixtures";
import { shardedDb } from "../../support/shards";

interface Entry {
  at: string;
  action: string;
  target: string;
  request_id: string;
}
interface Page {
  entries: Entry[];
  next_cursor: string | null;
}

const send = (path: string, method: string, body?: unknown) =>
  call(path, {
    method,
    headers: { ...ADMIN, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

async function auditPage(cursor?: string): Promise<Page> {
  const response = await call(`/admin/audit${cursor ? `?cursor=${cursor}` : ""}`, { headers: ADMIN });
  expect(response.status).toBe(200);
  return response.json();
}

/** Every entry of the audit naming this target (the audit is shared by the whole run). */
async function entriesFor(targetPrefix: string): Promise<Entry[]> {
  const rows = await shardedDb
    .prepare("SELECT at, action, target, request_id FROM admin_audit WHERE target LIKE ? ORDER BY at, id")
    .bind(`${targetPrefix}%`)
    .all<Entry>();
  return rows.results;
}

describe("admin API: audit", () => {
  it("records every admin action with its time, action, target and request id, newest first", async () => {
    const created = await createMerchant({ fulfillment_url: "https://shop.example/a" });
    const id = created.merchant.id;
    expect((await send(`/admin/merchants/${id}`, "PATCH", { name: "Renamed" })).status).toBe(200);
    const issued = (await (await send(`/admin/merchants/${id}/api-keys`, "POST")).json()) as { api_key: { id: string } };
    expect((await send(`/admin/merchants/${id}/api-keys/${issued.api_key.id}`, "DELETE")).status).toBe(200);
    expect((await send(`/admin/merchants/${id}/webhook-credential`, "POST", { overlap_hours: 1 })).status).toBe(201);
    const letter = `dl_audit_${id}`;
    await shardedDb
      .prepare("INSERT INTO dead_letters (id, queue, merchant_id, body, error, attempts) VALUES (?, 'smart-router-webhooks', ?, ?, 'x', 1)")
      .bind(
        letter,
        id,
        JSON.stringify({
          v: 1,
          merchant_id: id,
          event_id: "ev_auditx",
          event_type: "t",
          received_at: new Date().toISOString(),
          delivery_id: "d",
        }),
      )
      .run();
    expect((await send("/admin/dead-letters/redrive", "POST", { ids: [letter] })).status).toBe(200);

    const recorded = await entriesFor(`merchant:${id}`);
    expect(recorded.map((entry) => [entry.action, entry.target])).toEqual([
      ["merchant.create", `merchant:${id}`],
      ["merchant.update", `merchant:${id}`],
      ["api_key.create", `merchant:${id}/api_key:${issued.api_key.id}`],
      ["api_key.revoke", `merchant:${id}/api_key:${issued.api_key.id}`],
      ["webhook_credential.rotate", `merchant:${id}`],
    ]);
    expect(await entriesFor(`dead_letter:${letter}`)).toMatchObject([{ action: "dead_letter.redrive", target: `dead_letter:${letter}` }]);
    for (const entry of recorded) {
      expect(entry.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(entry.request_id).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(new Set(recorded.map((entry) => entry.request_id)).size).toBe(recorded.length);

    // The API answers the same entries, newest first, in the contract's shape.
    const first = await auditPage();
    expect(Object.keys(first).sort()).toEqual(["entries", "next_cursor"]);
    const mine = first.entries.filter((entry) => entry.target.startsWith(`merchant:${id}`) || entry.target === `dead_letter:${letter}`);
    expect(mine.map((entry) => entry.action)).toEqual([
      "dead_letter.redrive",
      "webhook_credential.rotate",
      "api_key.revoke",
      "api_key.create",
      "merchant.update",
      "merchant.create",
    ]);
    for (const entry of first.entries) expect(Object.keys(entry).sort()).toEqual(["action", "at", "request_id", "target"]);
  });

  it("pages with a cursor until next_cursor is null, each entry once", async () => {
    const insert = shardedDb.prepare(
      "INSERT INTO admin_audit (id, at, action, target, request_id) VALUES (?, ?, 'merchant.update', ?, 'r')",
    );
    const tag = uniqueId("page");
    // 230 entries in the far future (so they come first), three per millisecond: the keyset needs the id as well.
    await shardedDb.batch(
      Array.from({ length: 230 }, (_, i) =>
        insert.bind(
          `aud_${tag}_${String(i).padStart(3, "0")}`,
          `2999-01-01T00:00:00.${String(Math.floor(i / 3)).padStart(3, "0")}Z`,
          `page:${tag}`,
        ),
      ),
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: Page = await auditPage(cursor ?? undefined);
      seen.push(...page.entries.filter((entry) => entry.target === `page:${tag}`).map((entry) => entry.at + entry.target));
      expect(page.entries.length).toBeLessThanOrEqual(100);
      cursor = page.next_cursor;
      pages++;
    } while (cursor && seen.length < 230 && pages < 10);
    expect(seen).toHaveLength(230);
    expect(pages).toBe(3);
    await shardedDb.prepare("DELETE FROM admin_audit WHERE target = ?").bind(`page:${tag}`).run();
  });

  it("400 for a cursor it did not issue and for an unknown query parameter", async () => {
    for (const query of ["cursor=not-a-cursor!", `cursor=${btoa('{"a":1}')}`, "cursor=", "limit=5"]) {
      const response = await call(`/admin/audit?${query}`, { headers: ADMIN });
      expect(response.status, query).toBe(400);
      const code = ((await response.json()) as { error: { code: string } }).error.code;
      expect(["invalid_cursor", "invalid_query"], query).toContain(code);
    }
  });

  it("never records a secret, and nothing for a refused or failed action", async () => {
    const created = await createMerchant();
    const before = await entriesFor(`merchant:${created.merchant.id}`);
    const secretKey = `sk_audit_${crypto.randomUUID()}`;
    const projectId = `test-proj_audit${created.merchant.id.replaceAll("-", "")}`;
    await registerSandboxProject({ project_id: projectId, secret_key: secretKey });
    expect(
      (await send(`/admin/merchants/${created.merchant.id}`, "PATCH", { smart_router: { project_id: projectId, secret_key: secretKey } }))
        .status,
    ).toBe(200);
    const rotated = (await (await send(`/admin/merchants/${created.merchant.id}/webhook-credential`, "POST")).json()) as {
      webhook: { password: string };
    };
    const key = (await (await send(`/admin/merchants/${created.merchant.id}/api-keys`, "POST")).json()) as { api_key: { key: string } };
    // Refused: an unknown merchant, a bad body; a refusal's request id is nowhere in the audit.
    expect((await send("/admin/merchants/nobody-audit/api-keys", "POST")).status).toBe(404);
    const refused = await send(`/admin/merchants/${created.merchant.id}`, "PATCH", { rate_limits: { primary_rpm: 0 } });
    expect(refused.status).toBe(400);
    const refusedId = ((await refused.json()) as { error: { request_id: string } }).error.request_id;
    const after = await entriesFor(`merchant:${created.merchant.id}`);
    expect(after.length - before.length).toBe(3);
    expect(await entriesFor("merchant:nobody-audit")).toEqual([]);
    expect(after.map((entry) => entry.request_id)).not.toContain(refusedId);
    const everything = JSON.stringify((await shardedDb.prepare("SELECT * FROM admin_audit").all()).results);
    for (const secret of [
      secretKey,
      rotated.webhook.password,
      key.api_key.key,
      created.api_key,
      created.webhook.password,
      env.ADMIN_TOKEN,
    ]) {
      expect(everything).not.toContain(secret);
    }
  });
});
