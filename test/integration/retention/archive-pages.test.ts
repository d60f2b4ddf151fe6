import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { deadLetters } from "../../../src/db/schema";
import { type ArchiveBucket, decodePages } from "../../../src/retention/archive-format";
import { archivePage, archivePageRun, deadLetterPages, PAGES_PER_RUN, ROWS_PER_PAGE } from "../../../src/retention/pages";
import { dayCutoff } from "../../../src/retention/retention";
import { ADMIN, call, createMerchant } from "../../support/fixtures";
import { shardedDb } from "../../support/shards";
import { dbOfMerchant } from "../../support/status-api";
import { type Failure, failingBucket } from "./support";

/** Runs in this file are dated 1984, before anything else it stores; retention keeps dead letters 30 days here. */
const NOW = Date.parse("1984-06-01T12:00:00.000Z");
const RETENTION_DAYS = 30;
const CUTOFF = dayCutoff(NOW, RETENTION_DAYS);
const daysAgo = (days: number) => new Date(NOW - days * 86_400_000).toISOString();

interface Letter {
  id: string;
  merchant_id: string | null;
  created_at: string;
  redriven_at?: string | null;
}
interface LetterPage {
  dead_letters: Letter[];
  next_cursor: string | null;
}

/** `count` dead letters of the merchant written `days` days before NOW (a second apart), ids `dl_<tag>_<n>`. */
async function seedLetters(merchantId: string, tag: string, count: number, days: number) {
  const db = await dbOfMerchant(merchantId);
  const base = Date.parse(daysAgo(days));
  const rows = Array.from({ length: count }, (_, n) => ({
    id: `dl_${tag}_${String(n).padStart(4, "0")}`,
    queue: "smart-router-webhooks",
    merchantId,
    body: { merchant_id: merchantId, event_id: `ev_${tag}_${n}` },
    error: "fetch-back failed: 503",
    attempts: 4,
    createdAt: new Date(base + n * 1000).toISOString(),
  }));
  for (let i = 0; i < rows.length; i += 10) await db.insert(deadLetters).values(rows.slice(i, i + 10));
  return rows.map((row) => row.id);
}

/** The ids of the merchant's dead letters still in D1. */
async function lettersInD1(merchantId: string) {
  const { results } = await shardedDb
    .prepare("SELECT id FROM dead_letters WHERE merchant_id = ? ORDER BY id")
    .bind(merchantId)
    .all<{ id: string }>();
  return results.map((row) => row.id);
}

/** Every archived letter of the merchant through `GET /admin/dead-letters?archived=true`, page by page. */
async function walkArchived(merchantId: string, headers: Record<string, string> = ADMIN) {
  const pages: LetterPage[] = [];
  let cursor: string | null = null;
  // Ends on the page without a next cursor; 50 pages at most.
  for (let i = 0; i < 50; i++) {
    const query: string = `archived=true&merchant=${merchantId}${cursor ? `&cursor=${cursor}` : ""}`;
    const response = await call(`/admin/dead-letters?${query}`, { headers });
    expect(response.status).toBe(200);
    const page = (await response.json()) as LetterPage;
    pages.push(page);
    cursor = page.next_cursor;
    if (cursor === null) return pages;
  }
  throw new Error("the archived list did not end");
}

/** Steps the merchant's shard's dead-letter archive until it has nothing left. */
const archiveLetters = async (merchantId: string, bucket: ArchiveBucket = env.ARCHIVE) =>
  archivePageRun({ db: await dbOfMerchant(merchantId), bucket, table: deadLetterPages, cutoff: CUTOFF, now: NOW });

describe("retention: dead letters past the window go to R2 in pages, and the admin list reads them back", () => {
  it("archives a merchant's old letters, redriven or not, keeps the young ones, and lists both as before", async () => {
    const { merchant } = await createMerchant();
    const old = await seedLetters(merchant.id, `old_${merchant.id}`, 3, RETENTION_DAYS + 2);
    const young = await seedLetters(merchant.id, `young_${merchant.id}`, 1, RETENTION_DAYS - 1);
    await shardedDb.prepare("UPDATE dead_letters SET redriven_at = ? WHERE id = ?").bind(daysAgo(RETENTION_DAYS), old[0]).run();

    const run = await archiveLetters(merchant.id);
    expect(run).toMatchObject({ pagesStored: 1, rowsArchived: 3, failures: [] });
    expect(await lettersInD1(merchant.id)).toEqual(young);

    // The D1 list keeps its contract: the young letter, the fields it always had.
    const live = (await (await call(`/admin/dead-letters?merchant=${merchant.id}`, { headers: ADMIN })).json()) as LetterPage;
    expect(live.dead_letters.map((letter) => letter.id)).toEqual(young);
    expect(Object.keys(live.dead_letters[0] ?? {}).sort()).toEqual([
      "attempts",
      "body",
      "created_at",
      "error",
      "id",
      "merchant_id",
      "queue",
    ]);

    // The archive: every old letter once, newest first, with its redrive.
    const [page] = await walkArchived(merchant.id);
    expect(page?.dead_letters.map((letter) => letter.id)).toEqual([...old].reverse());
    expect(page?.dead_letters.at(-1)).toMatchObject({
      merchant_id: merchant.id,
      redriven_at: daysAgo(RETENTION_DAYS),
      error: "fetch-back failed: 503",
      attempts: 4,
      body: { event_id: `ev_old_${merchant.id}_0` },
    });
    const listed = await env.ARCHIVE.list({ prefix: `dead-letters/merchant/${merchant.id}/` });
    expect(listed.objects.map((object) => object.key)).toEqual([
      `dead-letters/merchant/${merchant.id}/${daysAgo(RETENTION_DAYS + 2).slice(0, 10)}/120000000Z-${old[0]}.ndjson.gz`,
    ]);
  });

  it(`stores ${ROWS_PER_PAGE} letters a page and at most ${PAGES_PER_RUN} pages a run; the rest go on the next run`, async () => {
    const { merchant } = await createMerchant();
    const ids = await seedLetters(merchant.id, `many_${merchant.id}`, ROWS_PER_PAGE * PAGES_PER_RUN + 1, RETENTION_DAYS + 5);
    expect(await archiveLetters(merchant.id)).toMatchObject({ pagesStored: PAGES_PER_RUN, rowsArchived: ROWS_PER_PAGE * PAGES_PER_RUN });
    expect(await lettersInD1(merchant.id)).toEqual([ids.at(-1)]);
    expect(await archiveLetters(merchant.id)).toMatchObject({ pagesStored: 1, rowsArchived: 1 });
    expect(await archiveLetters(merchant.id)).toMatchObject({ pagesStored: 0 });

    const pages = await walkArchived(merchant.id);
    expect(pages).toHaveLength(PAGES_PER_RUN + 1);
    const walked = pages.flatMap((page) => page.dead_letters.map((letter) => letter.id));
    expect(walked).toEqual([...ids].reverse());
  });

  it.each<Failure>(["put refused", "head fails", "dies after put"])(
    "leaves the rows in D1 when R2 fails (%s), logs the merchant, and the next run stores the same object once",
    async (failure) => {
      const { merchant } = await createMerchant();
      const ids = await seedLetters(merchant.id, `fail_${merchant.id}`, 5, RETENTION_DAYS + 3);
      const logs = vi.spyOn(console, "error");
      const run = await archiveLetters(
        merchant.id,
        failingBucket(failure, () => true),
      );
      expect(run.pagesStored).toBe(0);
      expect(run.failures.map((entry) => entry.scope)).toContain(merchant.id);
      const logged = logs.mock.calls.map(([line]) => JSON.parse(String(line)));
      expect(logged).toContainEqual(expect.objectContaining({ message: "retention.page_failed", merchant_id: merchant.id }));
      expect(await lettersInD1(merchant.id)).toEqual(ids);

      expect(await archiveLetters(merchant.id)).toMatchObject({ pagesStored: 1, rowsArchived: 5 });
      expect(await lettersInD1(merchant.id)).toEqual([]);
      const listed = await env.ARCHIVE.list({ prefix: `dead-letters/merchant/${merchant.id}/` });
      expect(listed.objects).toHaveLength(1);
      const object = await env.ARCHIVE.get(listed.objects[0]?.key ?? "");
      const records = object ? await decodePages(object.body) : [];
      expect(records.map((record) => record.id)).toEqual(ids);
    },
  );

  it("passes over a merchant whose page R2 refuses: the other merchants' letters are archived in the same run", async () => {
    const [refused, served] = [(await createMerchant()).merchant.id, (await createMerchant()).merchant.id];
    const refusedIds = await seedLetters(refused, `refused_${refused}`, 2, RETENTION_DAYS + 9);
    await seedLetters(served, `served_${served}`, 2, RETENTION_DAYS + 8);
    const refusing = failingBucket("put refused", () => true);
    const onlyRefused: typeof refusing = {
      get: (key, options) => env.ARCHIVE.get(key, options),
      head: (key) => env.ARCHIVE.head(key),
      put: (key, value, options) =>
        key.includes(`/${refused}/`) ? refusing.put(key, value, options) : env.ARCHIVE.put(key, value, options),
    };
    // Each merchant's shard in turn (one shard or two): the refused merchant is passed over, the other's letters go.
    const runs = [];
    for (const merchantId of [refused, served]) {
      runs.push(
        await archivePageRun({ db: await dbOfMerchant(merchantId), bucket: onlyRefused, table: deadLetterPages, cutoff: CUTOFF, now: NOW }),
      );
    }
    const failed = runs.flatMap((run) => run.failures.map((failure) => failure.scope));
    expect(failed.length).toBeGreaterThan(0);
    expect(new Set(failed)).toEqual(new Set([refused]));
    expect(await lettersInD1(refused)).toEqual(refusedIds);
    expect(await lettersInD1(served)).toEqual([]);
    // R2 takes the refused merchant's page again: the next run stores it.
    expect(await archiveLetters(refused)).toMatchObject({ pagesStored: 1, rowsArchived: 2, failures: [] });
    expect(await lettersInD1(refused)).toEqual([]);
  });

  it("finishes a page another run already finished without storing it twice", async () => {
    const { merchant } = await createMerchant();
    // Nothing else of this file waits on the shard, so both steps take this merchant's page.
    await archiveLetters(merchant.id);
    await seedLetters(merchant.id, `twice_${merchant.id}`, 2, RETENTION_DAYS + 4);
    const db = await dbOfMerchant(merchant.id);
    const input = { db, bucket: env.ARCHIVE, table: deadLetterPages, cutoff: CUTOFF, now: NOW };
    const [first, second] = await Promise.all([archivePage(input), archivePage(input)]);
    expect([first.kind, second.kind].sort()).toEqual(["busy", "stored"]);
    expect(await lettersInD1(merchant.id)).toEqual([]);
    const pages = await walkArchived(merchant.id);
    expect(pages.flatMap((page) => page.dead_letters)).toHaveLength(2);
  });

  it("lists archived letters to the admin token only, and refuses a cursor of the other list", async () => {
    const { merchant, api_key } = await createMerchant();
    await seedLetters(merchant.id, `sec_${merchant.id}`, 1, RETENTION_DAYS + 6);
    await archiveLetters(merchant.id);
    const strangers: Record<string, string>[] = [{}, { authorization: `Bearer ${api_key}` }, { authorization: "Bearer not-the-token" }];
    for (const headers of strangers) {
      const response = await call(`/admin/dead-letters?archived=true&merchant=${merchant.id}`, { headers });
      expect(response.status).toBe(401);
      expect(await response.text()).not.toContain(`dl_sec_${merchant.id}`);
    }
    const liveCursor = btoa(JSON.stringify({ c: "1984-01-01T00:00:00.000Z", i: "dl_x" })).replace(/=+$/, "");
    const response = await call(`/admin/dead-letters?archived=true&cursor=${liveCursor}`, { headers: ADMIN });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: "invalid_cursor" } });
  });
});
