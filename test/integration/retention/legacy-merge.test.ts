import { describe, expect, it } from "vitest";
import { openDatabase } from "../../../src/db/client";
import { archiveMerchantHistory } from "../../../src/retention/archive";
import { archiveName } from "../../../src/retention/history";
import { apply, snapshot } from "../../support/apply";
import { createMerchant } from "../../support/fixtures";
import { asBeforeTheColumns, legacyRows, NO_LEGACY_ROWS, run0035, storedColumns } from "../../support/legacy-histories";
import { dbFor, SHARDS } from "../../support/shards";
import { seedEvent, seedOperation, seedTableOperation, seedTransaction } from "../../support/status-api";
import { timelineOf } from "../console-api/support";
import { archiveAll, FUTURE_CUTOFF, failingBucket, historyAnswers, ledger, namesOf } from "./support";

// Migration 0035, the contract half of 0030 and 0034: what is left in `operations`, `transaction_status_changes` and
// `archived_histories` is merged into the record's columns and deleted from the tables; the code reads the columns only.

/** What the status API and the timeline answer about one transaction. */
const answersOf = async (apiKey: string, transactionId: string) => ({
  ...(await historyAnswers(apiKey, transactionId)),
  timeline: await timelineOf(apiKey, transactionId),
});

const ms = (base: string, offset: number) => new Date(Date.parse(base) + offset).toISOString();

/** A status history of two changes at `at` and a second later, as the upsert writes it (db/status-history.ts). */
const twoChanges = (at: string) => [
  { at, to: "authorized", event_id: "ev_a", event_name: "transaction.authorized" },
  { at: ms(at, 1000), from: "authorized", to: "completed", event_id: "ev_c", event_name: "transaction.captured" },
];

/**
 * A merchant's completed transaction whose history (an event, 2 operations, 2 status changes) was archived to R2, and
 * which then gained an operation of its own in D1: the record lists one archive name and holds one operation.
 */
async function partlyArchived() {
  const merchant = await createMerchant();
  const merchantId = merchant.merchant.id;
  const updatedAt = "2026-02-01T10:00:00.000Z";
  const record = await seedTransaction(merchantId, {
    status: "completed",
    updatedAt,
    statusHistory: JSON.stringify(twoChanges("2026-02-01T09:00:00.000Z")),
  });
  await seedEvent({ merchantId, transactionId: record.id, firedAt: "2026-02-01T09:00:00.000Z" });
  for (let o = 0; o < 2; o++) await seedOperation({ merchantId, transactionId: record.id, createdAt: ms("2026-02-01T09:00:00.000Z", o) });
  await archiveAll(merchantId);
  await seedOperation({ merchantId, transactionId: record.id, createdAt: "2026-02-02T09:00:00.000Z" });
  const d1 = await dbFor(merchantId);
  const columns = await storedColumns(d1, merchantId, record.id);
  expect(columns.names).toHaveLength(1);
  expect(columns.operations).toHaveLength(1);
  return { merchant, merchantId, id: record.id, d1, columns, before: await answersOf(merchant.api_key, record.id) };
}

describe("migration 0035 merges the legacy tables into the records (happy)", () => {
  it("a history only in the tables reads back the same after 0035, from the columns, and leaves the tables empty", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const id = `tr_merge${Date.now().toString(36)}a`;
    await apply(merchantId, [snapshot(id, "authorized", 2)]);
    await apply(merchantId, [snapshot(id, "completed", 4)]);
    const d1 = await dbFor(merchantId);
    const columns = await storedColumns(d1, merchantId, id);
    const before = await answersOf(merchant.api_key, id);
    expect(before.operations.operations).toHaveLength(4);
    expect(before.timeline.filter((entry) => entry.kind === "state_change")).toHaveLength(2);

    await asBeforeTheColumns(d1, { merchantId, transactionId: id });
    expect(await legacyRows(d1, merchantId)).toEqual({ operations: 4, transaction_status_changes: 2, archived_histories: 0 });
    // The code reads the columns only: until 0035 runs, the tables' rows are not part of any answer.
    const unmerged = await answersOf(merchant.api_key, id);
    expect(unmerged.operations.operations).toEqual([]);
    expect(unmerged.timeline.filter((entry) => entry.kind === "state_change")).toEqual([]);

    await run0035(d1);
    expect(await answersOf(merchant.api_key, id)).toEqual(before);
    expect(await legacyRows(d1, merchantId)).toEqual(NO_LEGACY_ROWS);
    const merged = await storedColumns(d1, merchantId, id);
    expect(merged.statuses).toEqual(columns.statuses);
    // Each operation as the apply stored it (null members left out), whatever the array's order.
    const byId = (entries: Record<string, unknown>[] | null) =>
      [...(entries ?? [])].sort((x, y) => String(x.id).localeCompare(String(y.id)));
    expect(byId(merged.operations)).toEqual(byId(columns.operations));
  });

  it("a row the column holds is not doubled, a row of the window goes between the entries by time, and a second run changes nothing", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const [first, last] = twoChanges("2026-03-01T09:00:00.000Z");
    const record = await seedTransaction(merchantId, { status: "completed", statusHistory: JSON.stringify([first, last]) });
    const held = await seedOperation({ merchantId, transactionId: record.id, createdAt: "2026-03-01T09:00:01.000Z" });
    await seedTableOperation({ ...held, id: held.id ?? "" });
    const early = await seedTableOperation({ merchantId, transactionId: record.id, type: "3ds", createdAt: "2026-03-01T08:59:00.000Z" });
    const d1 = await dbFor(merchantId);
    const insert =
      d1.prepare(`INSERT INTO transaction_status_changes (merchant_id, transaction_id, at, from_status, to_status, event_id, event_name)
      VALUES (?, ?, ?, ?, ?, ?, ?)`);
    await d1.batch([
      // The column's first entry again (0030 left it in the table for a merchant fenced then), and one the window wrote.
      insert.bind(merchantId, record.id, first?.at, null, "authorized", "ev_a", "transaction.authorized"),
      insert.bind(merchantId, record.id, "2026-03-01T09:00:00.500Z", "authorized", "pending", "ev_p", "transaction.pending"),
    ]);

    await run0035(d1);
    const merged = await storedColumns(d1, merchantId, record.id);
    expect(merged.operations?.map((entry) => entry.id)).toEqual([held.id, early.id]);
    expect(merged.statuses?.map((entry) => entry.to)).toEqual(["authorized", "pending", "completed"]);
    expect(merged.statuses?.[1]).toEqual({
      at: "2026-03-01T09:00:00.500Z",
      from: "authorized",
      to: "pending",
      event_id: "ev_p",
      event_name: "transaction.pending",
    });
    expect(await legacyRows(d1, merchantId)).toEqual(NO_LEGACY_ROWS);
    const answers = await answersOf(merchant.api_key, record.id);
    expect(answers.operations.operations.map((operation) => operation.id)).toEqual([early.id, held.id]);
    const changes = answers.timeline.filter((entry) => entry.kind === "state_change");
    expect(changes.map((entry) => entry.at)).toEqual([first?.at, "2026-03-01T09:00:00.500Z", last?.at]);

    // Idempotent: a second run finds nothing to merge, delete or drop.
    expect((await run0035(d1)).every((changes) => changes === 0)).toBe(true);
    expect(await storedColumns(d1, merchantId, record.id)).toEqual(merged);
  });

  it("a partly archived history: the archive's names and the unarchived rows left in the tables read back the same", async () => {
    const shop = await partlyArchived();
    await asBeforeTheColumns(shop.d1, { merchantId: shop.merchantId, transactionId: shop.id });
    expect(await legacyRows(shop.d1, shop.merchantId)).toEqual({ operations: 1, transaction_status_changes: 0, archived_histories: 1 });
    await run0035(shop.d1);
    expect(await storedColumns(shop.d1, shop.merchantId, shop.id)).toEqual(shop.columns);
    expect(await legacyRows(shop.d1, shop.merchantId)).toEqual(NO_LEGACY_ROWS);
    const after = await answersOf(shop.merchant.api_key, shop.id);
    expect(after).toEqual(shop.before);
    expect(after.operations.operations).toHaveLength(3);
    expect(after.timeline.filter((entry) => entry.kind === "state_change")).toHaveLength(2);
  });

  it("names only in the table are listed again oldest object first, beside the names the record lists", async () => {
    const shop = await partlyArchived();
    // A second object: the operation added after the first archive, once the record changed again.
    await shop.d1
      .prepare("UPDATE transactions SET updated_at = '2026-02-03T10:00:00.000Z' WHERE merchant_id = ? AND id = ?")
      .bind(shop.merchantId, shop.id)
      .run();
    await archiveAll(shop.merchantId);
    const names = (await ledger(shop.merchantId)).map((object) => archiveName(shop.merchantId, object.key));
    expect(names).toHaveLength(2);
    expect(await namesOf(shop.merchantId, shop.id)).toEqual(names);
    const before = await answersOf(shop.merchant.api_key, shop.id);
    // The older object only in the table (as code before 0034 listed it), the newer in the record.
    await asBeforeTheColumns(shop.d1, { merchantId: shop.merchantId, transactionId: shop.id, kinds: ["names"] });
    await shop.d1
      .prepare("UPDATE transactions SET archive_names = json_array(?) WHERE merchant_id = ? AND id = ?")
      .bind(names[1], shop.merchantId, shop.id)
      .run();

    await run0035(shop.d1);
    expect(await namesOf(shop.merchantId, shop.id)).toEqual(names);
    expect(await legacyRows(shop.d1, shop.merchantId)).toEqual(NO_LEGACY_ROWS);
    expect(await answersOf(shop.merchant.api_key, shop.id)).toEqual(before);
  });
});

/** Marks the merchant as a move does on its shard (0022), for the time of `body`. */
async function withMark<T>(merchantId: string, state: "tracking" | "fenced" | "moved", body: () => Promise<T>): Promise<T> {
  const d1 = await dbFor(merchantId);
  await d1.prepare("INSERT INTO move_marks (merchant_id, move_id, state) VALUES (?, 'mov_0035', ?)").bind(merchantId, state).run();
  try {
    return await body();
  } finally {
    await d1.prepare("DELETE FROM move_marks WHERE merchant_id = ? AND move_id = 'mov_0035'").bind(merchantId).run();
    await d1.prepare("DELETE FROM move_changes WHERE merchant_id = ?").bind(merchantId).run();
  }
}

describe("migration 0035 merges the legacy tables into the records (errors)", () => {
  it("a merchant fenced or moved away by a move does not fail it: its rows stay in the tables, the others' are merged", async () => {
    const [plain, fenced, moved] = [await partlyArchived(), await partlyArchived(), await partlyArchived()];
    for (const shop of [plain, fenced, moved]) await asBeforeTheColumns(shop.d1, { merchantId: shop.merchantId, transactionId: shop.id });
    // A row whose record is gone (a move's cleaning midway): nothing reads it; neither merged nor deleted.
    await seedTableOperation({ merchantId: plain.merchantId, transactionId: "tr_gone", id: `op_gone_${plain.merchantId}` });

    await withMark(fenced.merchantId, "fenced", () =>
      withMark(moved.merchantId, "moved", async () => {
        for (const shard of SHARDS) await run0035(shard);
        for (const shop of [fenced, moved]) {
          expect(await legacyRows(shop.d1, shop.merchantId)).toEqual({
            operations: 1,
            transaction_status_changes: 0,
            archived_histories: 1,
          });
          expect(await storedColumns(shop.d1, shop.merchantId, shop.id)).toEqual({ operations: null, statuses: null, names: null });
        }
      }),
    );
    expect(await storedColumns(plain.d1, plain.merchantId, plain.id)).toEqual(plain.columns);
    expect(await legacyRows(plain.d1, plain.merchantId)).toEqual({ ...NO_LEGACY_ROWS, operations: 1 });
    expect(await answersOf(plain.merchant.api_key, plain.id)).toEqual(plain.before);
    // Unfenced (a move that failed after its fence), the merchant's rows merge on the next run (the next release's).
    await run0035(fenced.d1);
    expect(await answersOf(fenced.merchant.api_key, fenced.id)).toEqual(fenced.before);
  });

  it("a merchant being copied (tracking) is merged, and its change log names the record and the deleted rows for the move", async () => {
    const shop = await partlyArchived();
    await asBeforeTheColumns(shop.d1, { merchantId: shop.merchantId, transactionId: shop.id });
    const logged = await withMark(shop.merchantId, "tracking", async () => {
      await run0035(shop.d1);
      const { results } = await shop.d1
        .prepare("SELECT DISTINCT tbl FROM move_changes WHERE merchant_id = ? ORDER BY tbl")
        .bind(shop.merchantId)
        .all<{ tbl: string }>();
      return results.map((row) => row.tbl);
    });
    expect(logged).toEqual(["archived_histories", "operations", "transactions"]);
    expect(await storedColumns(shop.d1, shop.merchantId, shop.id)).toEqual(shop.columns);
    expect(await answersOf(shop.merchant.api_key, shop.id)).toEqual(shop.before);
  });

  it("drops a writing archive claim naming rows of transaction_status_changes, which the next run claims again and stores", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const record = await seedTransaction(merchantId, {
      status: "completed",
      updatedAt: "2026-02-01T10:00:00.000Z",
      statusHistory: JSON.stringify(twoChanges("2026-02-01T09:00:00.000Z")),
    });
    await seedEvent({ merchantId, transactionId: record.id, firedAt: "2026-02-01T09:00:00.000Z" });
    const before = await answersOf(merchant.api_key, record.id);
    const d1 = await dbFor(merchantId);
    await asBeforeTheColumns(d1, { merchantId, transactionId: record.id, kinds: ["statuses"] });
    // A claim as the release before 0035 made it (its manifest names the table's rows), left writing by a failed put.
    const claim = () =>
      archiveMerchantHistory({
        db: openDatabase(d1),
        bucket: failingBucket("put refused"),
        merchantId,
        cutoff: FUTURE_CUTOFF,
        now: Date.now(),
      });
    await expect(claim()).rejects.toThrow(/put refused|service unavailable/);
    await d1
      .prepare(`UPDATE archive_objects SET manifest = json_set(manifest, '$.statusChanges',
        (SELECT json_group_array(id) FROM transaction_status_changes WHERE merchant_id = ?1)) WHERE merchant_id = ?1 AND status = 'writing'`)
      .bind(merchantId)
      .run();
    // Another merchant's claim names none: it stays, and finishes.
    const other = await partlyArchived();
    await other.d1
      .prepare("UPDATE transactions SET updated_at = '2026-02-03T10:00:00.000Z' WHERE merchant_id = ? AND id = ?")
      .bind(other.merchantId, other.id)
      .run();
    await expect(
      archiveMerchantHistory({
        db: openDatabase(other.d1),
        bucket: failingBucket("put refused"),
        merchantId: other.merchantId,
        cutoff: FUTURE_CUTOFF,
        now: Date.now(),
      }),
    ).rejects.toThrow();

    for (const shard of new Set([d1, other.d1])) await run0035(shard);
    expect(await ledger(merchantId)).toEqual([]);
    expect((await ledger(other.merchantId)).map((object) => object.status)).toEqual(["stored", "writing"]);
    expect(await answersOf(merchant.api_key, record.id)).toEqual(before);
    await archiveAll(merchantId);
    await archiveAll(other.merchantId);
    expect((await ledger(merchantId)).map((object) => object.status)).toEqual(["stored"]);
    expect((await ledger(other.merchantId)).map((object) => object.status)).toEqual(["stored", "stored"]);
    expect(await storedColumns(d1, merchantId, record.id)).toMatchObject({ statuses: null, operations: null });
    expect(await answersOf(merchant.api_key, record.id)).toEqual(before);
    expect(await legacyRows(d1, merchantId)).toEqual(NO_LEGACY_ROWS);
  });
});

describe("migration 0035 merges the legacy tables into the records (security)", () => {
  it("merges a row into its own merchant's record only, and never lists another merchant's archive object", async () => {
    const [a, b] = [await partlyArchived(), await createMerchant()];
    const bId = b.merchant.id;
    // B has a record of the same id as A's; its rows in the tables name that id.
    await seedTransaction(bId, { id: a.id, status: "completed" });
    const bOperation = await seedTableOperation({ merchantId: bId, transactionId: a.id });
    const bd1 = await dbFor(bId);
    // On A's shard, an object of B's (a move's leftover, say) and a row of A naming it: A's reads must never reach it.
    const bObject = await a.d1
      .prepare(`INSERT INTO archive_objects (key, merchant_id, day, status, through_updated_at, through_id, transactions, events,
          operations, created_at) VALUES (?, ?, '2026-02-01', 'stored', 'x', 'y', 1, 0, 0, 'c') RETURNING id`)
      .bind(`history/${bId}/2026-02-01/000000000Z-${a.id}.ndjson.gz`, bId)
      .first<{ id: number }>();
    await a.d1
      .prepare("INSERT INTO archived_histories (merchant_id, transaction_id, archive_id) VALUES (?, ?, ?)")
      .bind(a.merchantId, a.id, bObject?.id ?? 0)
      .run();

    for (const shard of SHARDS) await run0035(shard);
    expect(await storedColumns(a.d1, a.merchantId, a.id)).toEqual(a.columns);
    expect(await answersOf(a.merchant.api_key, a.id)).toEqual(a.before);
    // Not merged, so left in the table (nothing reads it; the next release drops it).
    expect((await legacyRows(a.d1, a.merchantId)).archived_histories).toBe(1);
    const bColumns = await storedColumns(bd1, bId, a.id);
    expect(bColumns.operations?.map((entry) => entry.id)).toEqual([bOperation.id]);
    expect(bColumns.names).toBeNull();
    expect((await historyAnswers(b.api_key, a.id)).operations.operations.map((operation) => operation.id)).toEqual([bOperation.id]);
  });
});
