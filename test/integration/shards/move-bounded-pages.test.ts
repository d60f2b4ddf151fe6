import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import { runBatch } from "../../../src/db/bulk";
import { openDatabase } from "../../../src/db/client";
import { shardAt } from "../../../src/db/shards";
import { appConfig } from "../../../src/env";
import { applyNextChanges, MOVE_PAGE } from "../../../src/moves/copy";
import { startMove } from "../../../src/moves/moves";
import { pageQuery, scanEndQuery } from "../../../src/moves/rows";
import { MOVED_TABLES } from "../../../src/moves/tables";
import { createMerchant } from "../../support/fixtures";
import { CRASHES, type Crash, countsOn, driveMove, jobOf, rowsOn, seedBulkTransactions, shardDb, stepQueue } from "../../support/moves";
import { shardIndexOf } from "../../support/shards";

const bindingOf = (index: number) => (index === 0 ? "DB" : `DB_SHARD_${index}`);
/** Keys a walked page reads in these tests: a few thousand seeded events take dozens of pages. */
const SCAN = 50;
/** Every run's filler merchants share this prefix, so the last test can take their events away again. */
const FILLER = `mf-${Date.now().toString(36)}`;

/**
 * `count` events on `db` with ids in one run of the inbox's key (`prefix`-0000…), the merchant's every `every`-th, the
 * others spread over seven filler merchants: the merchant's rows are a small minority interleaved among other merchants'.
 */
async function seedInbox({ db, merchantId, count, every }: { db: D1Database; merchantId: string; count: number; every: number }) {
  const prefix = `ev-${crypto.randomUUID().slice(0, 8)}`;
  await db
    .prepare(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?3 - 1)
       INSERT INTO events (merchant_id, id, name, outcome, first_received_at)
       SELECT CASE WHEN i % ?4 = 0 THEN ?1 ELSE ?5 || '-' || (i % 7) END, ?2 || '-' || printf('%05d', i), 'transaction.updated',
         'applied', '2026-01-01T00:00:00Z' FROM n`,
    )
    .bind(merchantId, prefix, count, every, FILLER)
    .run();
}

/** A table's copy progress on the target, as each step found it: the cursor, the rows copied so far, whether done. */
interface Snapshot {
  cursor: string | null;
  rows: number;
  done: number;
}

/**
 * Moves the merchant to the other shard step by step (`crash` at each copy page, `scanKeys` for walked tables), noting
 * `tbl`'s copy progress before each step; checks the move completes with the target's rows equal to the source's under
 * the fence and every count equal, and answers the progress seen, page by page.
 */
async function moveNoting({ merchantId, tbl, scanKeys, crash }: { merchantId: string; tbl: string; scanKeys?: number; crash?: Crash }) {
  const from = (await shardIndexOf(merchantId)) ?? 0;
  const to = 1 - from;
  const move = await startMove({ env, config: appConfig(env), queue: stepQueue().queue, merchantId, to: bindingOf(to) });
  const seen: Snapshot[] = [];
  let fenced: Record<string, string[]> | undefined;
  await driveMove({
    moveId: move.id,
    scanKeys,
    ...(crash ? { crashAt: "copy page" as const, crash } : {}),
    before: async (next) => {
      const line = await shardDb(to)
        .prepare("SELECT cursor, rows, done FROM move_progress WHERE move_id = ? AND tbl = ?")
        .bind(move.id, tbl)
        .first<Snapshot>();
      if (line && JSON.stringify(line) !== JSON.stringify(seen.at(-1))) seen.push(line);
      if (next === "switch" && !fenced) fenced = await rowsOn(shardDb(from), merchantId);
    },
  });
  expect(await jobOf(move.id)).toMatchObject({ status: "completed", error: null });
  expect(await shardIndexOf(merchantId)).toBe(to);
  expect(await rowsOn(shardDb(to), merchantId)).toEqual(fenced);
  return { seen, from, to };
}

/** Pages of `seen` that copied no row yet moved the cursor on: the scan's own progress. */
const emptyPages = (seen: readonly Snapshot[]) =>
  seen.filter((line, i) => i > 0 && line.rows === seen[i - 1]?.rows && line.cursor !== seen[i - 1]?.cursor).length;

afterAll(async () => {
  for (const db of [shardDb(0), shardDb(1)]) await db.prepare("DELETE FROM events WHERE merchant_id LIKE ?").bind(`${FILLER}-%`).run();
});

describe("a move's inbox copy reads a bounded run of keys per page (happy)", () => {
  it("copies a merchant's 30 events among 3,000 exactly, its empty pages counted as progress, and completes with equal counts", async () => {
    const { merchant } = await createMerchant();
    const from = (await shardIndexOf(merchant.id)) ?? 0;
    await seedInbox({ db: shardDb(from), merchantId: merchant.id, count: 3_000, every: 100 });
    const before = await countsOn(shardDb(from), merchant.id);
    expect(before.events).toBe(30);
    const { seen, to } = await moveNoting({ merchantId: merchant.id, tbl: "events", scanKeys: SCAN });
    // 3,000 keys at 50 a page: 60 pages at least (the shard holds other tests' events too), half of them empty.
    expect(seen.length).toBeGreaterThanOrEqual(3_000 / SCAN);
    expect(emptyPages(seen)).toBeGreaterThanOrEqual(3_000 / SCAN / 2);
    // Each row copied once: the pages' rows add up to the merchant's 30, the table done only at the last page.
    expect(seen.at(-1)).toMatchObject({ rows: 30, done: 1 });
    expect(seen.filter((line) => line.done === 1)).toHaveLength(1);
    expect(await countsOn(shardDb(to), merchant.id)).toEqual(before);
  }, 120_000);

  it("a run of more of the merchant's events than a page inside one scan: the page stops at its 500th row, the next goes on", async () => {
    const { merchant } = await createMerchant();
    const from = (await shardIndexOf(merchant.id)) ?? 0;
    await seedInbox({ db: shardDb(from), merchantId: merchant.id, count: MOVE_PAGE + 20, every: 1 });
    // A scan wider than the shard's whole inbox: both pages read from the cursor to the table's end.
    const { seen, to } = await moveNoting({ merchantId: merchant.id, tbl: "events", scanKeys: 1_000_000 });
    expect(seen.map((line) => line.rows)).toEqual([MOVE_PAGE, MOVE_PAGE + 20]);
    expect((await countsOn(shardDb(to), merchant.id)).events).toBe(MOVE_PAGE + 20);
  });

  it("copies transactions 100 rows a page (wide rows): 250 take 3 pages", async () => {
    const { merchant } = await createMerchant();
    const from = (await shardIndexOf(merchant.id)) ?? 0;
    await seedBulkTransactions(shardDb(from), merchant.id, 250);
    const { seen, to } = await moveNoting({ merchantId: merchant.id, tbl: "transactions" });
    expect(seen.map((line) => [line.rows, line.done])).toEqual([
      [100, 0],
      [200, 0],
      [250, 1],
    ]);
    expect((await countsOn(shardDb(to), merchant.id)).transactions).toBe(250);
  });

  it("the change catch-up writes transactions 100 rows a statement: 250 changed take 3", async () => {
    const { merchant } = await createMerchant();
    const from = (await shardIndexOf(merchant.id)) ?? 0;
    const source = shardDb(from);
    await seedBulkTransactions(source, merchant.id, 250);
    // A move tracking the source (its mark set, as its first copy step does), then every row written: 251 changes logged.
    const moveId = `mov_catchup${crypto.randomUUID().replaceAll("-", "")}`;
    await source.prepare("INSERT INTO move_marks (merchant_id, move_id, state) VALUES (?, ?, 'tracking')").bind(merchant.id, moveId).run();
    await source.batch([
      source.prepare("UPDATE merchants SET name = 'Renamed' WHERE id = ?").bind(merchant.id),
      source.prepare("UPDATE transactions SET status = 'refunded' WHERE merchant_id = ?").bind(merchant.id),
    ]);
    // The target's statements noted as they are prepared (runBatch prepares each, then runs them as one batch).
    const prepared: string[] = [];
    const target = new Proxy(shardDb(1 - from), {
      get(d1, property) {
        if (property === "prepare")
          return (query: string) => {
            prepared.push(query);
            return d1.prepare(query);
          };
        const value = Reflect.get(d1, property);
        return typeof value === "function" ? value.bind(d1) : value;
      },
    });
    const ends = { moveId, merchantId: merchant.id, source: openDatabase(source), target: openDatabase(target) };
    expect(await applyNextChanges(ends)).toBe(251);
    expect(prepared.filter((query) => /^INSERT INTO "transactions"/.test(query))).toHaveLength(3);
    const refunded = await shardDb(1 - from)
      .prepare("SELECT count(*) AS n FROM transactions WHERE merchant_id = ? AND status = 'refunded'")
      .bind(merchant.id)
      .first<{ n: number }>();
    expect(refunded?.n).toBe(250);
    // Not a move the directory knows: its mark, log and target copies go again.
    await source.batch([
      source.prepare("DELETE FROM move_marks WHERE merchant_id = ?").bind(merchant.id),
      source.prepare("DELETE FROM move_changes WHERE merchant_id = ?").bind(merchant.id),
    ]);
    await shardDb(1 - from).batch([
      shardDb(1 - from)
        .prepare("DELETE FROM transactions WHERE merchant_id = ?")
        .bind(merchant.id),
      shardDb(1 - from)
        .prepare("DELETE FROM merchants WHERE id = ?")
        .bind(merchant.id),
      shardDb(1 - from)
        .prepare("DELETE FROM move_progress WHERE move_id = ?")
        .bind(moveId),
    ]);
  });

  it("one page's statements read a bounded number of keys, whatever the inbox holds past them", async () => {
    const { merchant } = await createMerchant();
    const index = (await shardIndexOf(merchant.id)) ?? 0;
    await seedInbox({ db: shardDb(index), merchantId: merchant.id, count: 3_000, every: 100 });
    const inbox = MOVED_TABLES.find((table) => table.name === "events");
    if (!inbox) throw new Error("events is not a moved table");
    const read = { moved: inbox, merchantId: merchant.id, after: ["ev-", ""], limit: MOVE_PAGE, scanKeys: SCAN };
    const results = await runBatch(shardAt(env, index).db.$client, [scanEndQuery(read), pageQuery(read)]);
    const rowsRead = results.reduce((sum, result) => sum + (result.meta.rows_read ?? 0), 0);
    // The scan's end read twice (its own statement, the page's bound) and the range up to it: about 3 × 50 keys,
    // where an unbounded page would read every one of the 3,000 keys up to the merchant's last.
    expect(rowsRead).toBeGreaterThanOrEqual(SCAN);
    expect(rowsRead).toBeLessThanOrEqual(4 * SCAN);
  });
});

describe("a move's bounded inbox copy (errors: crashes between pages)", () => {
  it.each(CRASHES)(
    "each copy page %s: the copy resumes at the scan's cursor, no row lost or copied twice",
    async (crash) => {
      const { merchant } = await createMerchant();
      const from = (await shardIndexOf(merchant.id)) ?? 0;
      await seedInbox({ db: shardDb(from), merchantId: merchant.id, count: 600, every: 20 });
      const before = await countsOn(shardDb(from), merchant.id);
      const { seen, to } = await moveNoting({ merchantId: merchant.id, tbl: "events", scanKeys: SCAN, crash });
      expect(emptyPages(seen)).toBeGreaterThan(0);
      expect(seen.at(-1)).toMatchObject({ rows: 30, done: 1 });
      expect(await countsOn(shardDb(to), merchant.id)).toEqual(before);
    },
    120_000,
  );
});

describe("a move's bounded inbox copy (security)", () => {
  it("a page copies only the merchant's rows among the keys it reads: the other merchants' events stay where they are", async () => {
    const { merchant } = await createMerchant();
    const from = (await shardIndexOf(merchant.id)) ?? 0;
    await seedInbox({ db: shardDb(from), merchantId: merchant.id, count: 600, every: 20 });
    const fillers = (db: D1Database) =>
      db.prepare("SELECT count(*) AS n FROM events WHERE merchant_id LIKE ?").bind(`${FILLER}-%`).first<{ n: number }>();
    const [sourceBefore, targetBefore] = [await fillers(shardDb(from)), await fillers(shardDb(1 - from))];
    const { to } = await moveNoting({ merchantId: merchant.id, tbl: "events", scanKeys: SCAN });
    expect(await fillers(shardDb(to))).toEqual(targetBefore);
    expect(await fillers(shardDb(from))).toEqual(sourceBefore);
    expect((await countsOn(shardDb(to), merchant.id)).events).toBe(30);
  });
});
