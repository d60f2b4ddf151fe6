import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../../src/db/client";
import { AUDIT_PAGES_PER_READ } from "../../../src/retention/audit-archive";
import { AUDIT_KEPT_DAYS, PAGES_PER_RUN, ROWS_PER_PAGE } from "../../../src/retention/pages";
import { archiveAudit } from "../../../src/retention/retention";
import { ADMIN, call, createMerchant } from "../../support/fixtures";
import { failingBucket } from "../retention/support";

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

const DAY_MS = 86_400_000;
const directory = openDatabase(env.DB);
/**
 * The audit's runs are dated so that a test's seeded entries are past AUDIT_KEPT_DAYS and nothing a test writes now is.
 * Each test archives entries newer than the previous test's, as time does: the archive only ever holds entries older
 * than every one left in D1 (pages.ts archives the audit oldest first), which is what the list relies on.
 */
const runAt = (day: string) => Date.parse(day) + (AUDIT_KEPT_DAYS + 1) * DAY_MS;

/** Walks `GET /admin/audit` from the first page to the last (at most 100 pages). */
async function walkAudit(headers: Record<string, string> = ADMIN): Promise<Page[]> {
  const pages: Page[] = [];
  let cursor: string | null = null;
  // Ends on the page without a next cursor; 100 pages at most.
  for (let i = 0; i < 100; i++) {
    const response = await call(`/admin/audit${cursor ? `?cursor=${cursor}` : ""}`, { headers });
    expect(response.status).toBe(200);
    const page = (await response.json()) as Page;
    pages.push(page);
    cursor = page.next_cursor;
    if (cursor === null) return pages;
  }
  throw new Error("the audit did not end");
}

/** `count` audit entries on `day` (a second apart), targets `merchant:<tag>`. */
async function seedAudit(tag: string, day: string, count: number) {
  const base = Date.parse(`${day}T08:00:00.000Z`);
  const statements = Array.from({ length: count }, (_, n) =>
    env.DB.prepare("INSERT INTO admin_audit (id, at, action, target, request_id) VALUES (?, ?, 'merchant.update', ?, ?)").bind(
      `aud_${tag}_${String(n).padStart(4, "0")}`,
      new Date(base + n * 1000).toISOString(),
      `merchant:${tag}`,
      `req_${tag}_${n}`,
    ),
  );
  for (let i = 0; i < statements.length; i += 50) await env.DB.batch(statements.slice(i, i + 50));
}

const entriesInD1 = async (tag: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM admin_audit WHERE target = ?").bind(`merchant:${tag}`).first<{ n: number }>())?.n ?? 0;

describe("admin audit archived to R2 past a year, read back by GET /admin/audit", () => {
  it("moves entries past the window in pages and answers the same audit, page by page, newest first", async () => {
    await createMerchant();
    await seedAudit("year_old", "1980-03-01", ROWS_PER_PAGE + 30);
    await seedAudit("recent", "1985-01-01", 2);
    const before = (await walkAudit()).flatMap((page) => page.entries);

    // The run's window ends on 1980-03-02: the recent entries stay.
    const run = await archiveAudit({ db: directory, bucket: env.ARCHIVE, now: runAt("1980-03-02T06:00:00.000Z") });
    expect(run).toEqual({ audit_pages_stored: 2, audit_entries_archived: ROWS_PER_PAGE + 30 });
    expect(await entriesInD1("year_old")).toBe(0);
    expect(await entriesInD1("recent")).toBe(2);

    const pages = await walkAudit();
    expect(pages.flatMap((page) => page.entries)).toEqual(before);
    for (const page of pages.slice(0, -1)) expect(page.entries.length).toBeGreaterThan(0);
    const listed = await env.ARCHIVE.list({ prefix: "audit/1980-03-01/" });
    expect(listed.objects).toHaveLength(2);
  });

  it(`reads at most ${AUDIT_PAGES_PER_READ} archive objects a request: a page they cannot fill is short and goes on`, async () => {
    const days = ["1981-01-04", "1981-01-05", "1981-01-06", "1981-01-07"];
    for (const day of days) await seedAudit(`tiny_${day}`, day, 1);
    const before = (await walkAudit()).flatMap((page) => page.entries);
    // One run a day: four objects of one entry each.
    for (const day of days) {
      const run = await archiveAudit({ db: directory, bucket: env.ARCHIVE, now: runAt(`${day}T23:00:00.000Z`) + DAY_MS });
      expect(run.audit_pages_stored).toBeLessThanOrEqual(PAGES_PER_RUN);
    }
    for (const day of days) expect(await entriesInD1(`tiny_${day}`)).toBe(0);
    const pages = await walkAudit();
    expect(pages.flatMap((page) => page.entries)).toEqual(before);
    expect(pages.some((page) => page.entries.length < ROWS_PER_PAGE && page.next_cursor !== null)).toBe(true);
  });

  it("keeps the entries in D1 and the audit whole when R2 refuses the page; the next run stores it once", async () => {
    await seedAudit("refused", "1982-05-01", 3);
    const before = (await walkAudit()).flatMap((page) => page.entries);
    const now = runAt("1982-05-02T06:00:00.000Z");
    await expect(archiveAudit({ db: directory, bucket: failingBucket("put refused"), now })).rejects.toThrow(/archive failed/);
    expect(await entriesInD1("refused")).toBe(3);
    expect((await walkAudit()).flatMap((page) => page.entries)).toEqual(before);
    await expect(archiveAudit({ db: directory, bucket: failingBucket("dies after put"), now })).rejects.toThrow(/archive failed/);
    expect(await entriesInD1("refused")).toBe(3);

    expect(await archiveAudit({ db: directory, bucket: env.ARCHIVE, now })).toMatchObject({ audit_entries_archived: 3 });
    expect(await entriesInD1("refused")).toBe(0);
    expect((await env.ARCHIVE.list({ prefix: "audit/1982-05-01/" })).objects).toHaveLength(1);
    expect((await walkAudit()).flatMap((page) => page.entries)).toEqual(before);
  });

  it("archives no secret: the objects and the list hold actions and targets only; the list is the admin token's", async () => {
    const created = await createMerchant();
    const rotated = await call(`/admin/merchants/${created.merchant.id}/webhook-credential`, { method: "POST", headers: ADMIN });
    expect(rotated.status).toBe(201);
    const { webhook } = (await rotated.json()) as { webhook: { password: string } };
    // Age this merchant's entries past the window, then archive them.
    await env.DB.prepare("UPDATE admin_audit SET at = '1983-02-01T10:00:00.000Z' WHERE target LIKE ?")
      .bind(`merchant:${created.merchant.id}%`)
      .run();
    await archiveAudit({ db: directory, bucket: env.ARCHIVE, now: runAt("1983-02-02T06:00:00.000Z") });

    const secrets = [created.api_key, created.webhook.password, created.fulfillment.signing_secret, webhook.password, env.ADMIN_TOKEN];
    const objects = (await env.ARCHIVE.list({ prefix: "audit/1983-02-01/" })).objects;
    expect(objects.length).toBeGreaterThan(0);
    for (const { key } of objects) {
      const object = await env.ARCHIVE.get(key);
      const text = object ? await new Response(object.body.pipeThrough(new DecompressionStream("gzip"))).text() : "";
      expect(text).toContain(`merchant:${created.merchant.id}`);
      for (const secret of secrets) expect(text).not.toContain(secret);
    }
    const listed = JSON.stringify(await walkAudit());
    expect(listed).toContain(`merchant:${created.merchant.id}`);
    for (const secret of secrets) expect(listed).not.toContain(secret);

    for (const headers of [{}, { authorization: `Bearer ${created.api_key}` }] as Record<string, string>[]) {
      expect((await call("/admin/audit", { headers })).status).toBe(401);
    }
  });
});
