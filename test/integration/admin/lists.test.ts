import { describe, expect, it } from "vitest";
import { ADMIN, call, uniqueId } from "../../support/fixtures";
import { shardedDb } from "../../support/shards";

type Envelope = { error: { code: string; message: string } };

interface RunsPage {
  runs: { id: string; started_at: string }[];
  next_cursor: string | null;
}

describe("admin API: every list pages with a cursor and checks its query", () => {
  it("GET /admin/reconciliation/runs: newest first, 20 a page, each run once", async () => {
    const tag = uniqueId("run").replaceAll("-", "");
    const insert = shardedDb.prepare("INSERT INTO reconciliation_runs (id, started_at, found) VALUES (?, ?, 0)");
    // 45 runs in the far future (so they come first), two per millisecond: the keyset needs the id as well.
    await shardedDb.batch(
      Array.from({ length: 45 }, (_, i) =>
        insert.bind(`rec_${tag}_${String(i).padStart(2, "0")}`, `2999-06-01T00:00:00.${String(Math.floor(i / 2)).padStart(3, "0")}Z`),
      ),
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response = await call(`/admin/reconciliation/runs${cursor ? `?cursor=${cursor}` : ""}`, { headers: ADMIN });
      expect(response.status).toBe(200);
      const page = (await response.json()) as RunsPage;
      expect(page.runs.length).toBeLessThanOrEqual(20);
      seen.push(...page.runs.filter((run) => run.id.startsWith(`rec_${tag}_`)).map((run) => run.id));
      cursor = page.next_cursor;
      pages++;
    } while (cursor && seen.length < 45 && pages < 10);
    expect(seen).toEqual(Array.from({ length: 45 }, (_, i) => `rec_${tag}_${String(44 - i).padStart(2, "0")}`));
    expect(pages).toBe(3);
    await shardedDb.prepare("DELETE FROM reconciliation_runs WHERE id LIKE ?").bind(`rec_${tag}_%`).run();
  });

  it.each([
    ["/admin/reconciliation/runs?cursor=bm90LWEtY3Vyc29y", "invalid_cursor"],
    ["/admin/reconciliation/runs?limit=5", "invalid_query"],
    ["/admin/audit?cursor=%00", "invalid_cursor"],
    ["/admin/audit?cursor=a&cursor=b", "invalid_query"],
    ["/admin/dead-letters?merchant=Not%20An%20Id", "invalid_query"],
    ["/admin/dead-letters?merchant=a&merchant=b", "invalid_query"],
    ["/admin/dead-letters?queue=x", "invalid_query"],
    ["/admin/dead-letters?cursor=e30", "invalid_cursor"],
  ])("GET %s: 400 %s", async (path, code) => {
    const response = await call(path, { headers: ADMIN });
    expect(response.status).toBe(400);
    const envelope = (await response.json()) as Envelope;
    expect(envelope.error.code).toBe(code);
    expect(envelope.error.message.length).toBeGreaterThan(0);
  });

  it("a merchant id or key id of impossible shape in the path is a 404, as on /v1", async () => {
    for (const [method, path] of [
      ["GET", `/admin/merchants/${"x".repeat(65)}`],
      ["PATCH", "/admin/merchants/UPPER"],
      ["POST", "/admin/merchants/a%20b/api-keys"],
      ["DELETE", "/admin/merchants/acme/api-keys/not-a-key-id"],
      ["POST", "/admin/merchants/UPPER/webhook-credential"],
    ]) {
      const response = await call(path as string, {
        method,
        headers: ADMIN,
        body: method === "GET" || method === "DELETE" ? undefined : "{}",
      });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(((await response.json()) as Envelope).error.code).toBe("not_found");
    }
  });
});
