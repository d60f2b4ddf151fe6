import { env } from "cloudflare:workers";
import { SQL, sql } from "drizzle-orm";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import { describe, expect, it } from "vitest";
import { runBatch } from "../../../src/db/bulk";
import { openDatabase } from "../../../src/db/client";
import { archiveObjects } from "../../../src/db/schema";
import { archiveMerchantHistory } from "../../../src/retention/archive";
import type { ArchiveBucket } from "../../../src/retention/archive-format";
import { archivedObjectsOf, archiveName } from "../../../src/retention/history";
import { deleteManifestRows } from "../../../src/retention/history-rows";
import { createMerchant } from "../../support/fixtures";
import { run0035 } from "../../support/legacy-histories";
import { eventually, openShop, type Shop } from "../../support/sandbox";
import { dbFor } from "../../support/shards";
import { dbOfMerchant, getWithKey, seedEvent, seedOperation, seedTransaction } from "../../support/status-api";
import { timelineOf } from "../console-api/support";
import { archiveAll, FUTURE_CUTOFF, failingBucket, historyAnswers, ledger, namesOf, rowsInD1 } from "./support";

// 0034: the archive objects holding part of a record's history are named in the record's own row (`archive_names`),
// written by the strip UPDATE of the archive's finish; `archived_histories` is neither written nor read (0035 emptied it).

const ms = (base: string, offset: number) => new Date(Date.parse(base) + offset).toISOString();

/** A record's status history as the upsert writes it (db/status-history.ts): two changes. */
const statusHistory = (at: string) =>
  JSON.stringify([
    { at, to: "authorized", event_id: "ev_a", event_name: "transaction.authorized" },
    { at, from: "authorized", to: "completed", event_id: "ev_c", event_name: "transaction.captured" },
  ]);

/**
 * A merchant with `count` completed transactions, each with 2 applied events, 3 operations and 2 status changes in its
 * record (seeded, no sandbox).
 */
async function merchantWithHistories(count: number) {
  const merchant = await createMerchant();
  const merchantId = merchant.merchant.id;
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const updatedAt = ms("2026-02-01T10:00:00.000Z", i * 1000);
    const transaction = await seedTransaction(merchantId, { status: "completed", updatedAt, statusHistory: statusHistory(updatedAt) });
    for (let e = 0; e < 2; e++)
      await seedEvent({ merchantId, transactionId: transaction.id, firedAt: ms("2026-02-01T09:00:00.000Z", i * 1000 + e) });
    for (let o = 0; o < 3; o++) {
      await seedOperation({ merchantId, transactionId: transaction.id, createdAt: ms("2026-02-01T09:00:00.000Z", i * 1000 + o) });
    }
    ids.push(transaction.id);
  }
  const answers = async () => Promise.all(ids.map((id) => historyAnswers(merchant.api_key, id)));
  return { merchant, merchantId, ids, answers, before: await answers() };
}

/** The merchant's rows in `archived_histories`. */
const tableRows = async (merchantId: string) =>
  (
    await (
      await dbFor(merchantId)
    )
      .prepare("SELECT count(*) AS n FROM archived_histories WHERE merchant_id = ?")
      .bind(merchantId)
      .first<{ n: number }>()
  )?.n;

/** The merchant's shard binding, metering each statement of each D1 batch: its SQL and the rows it wrote (D1's meta). */
function meteredShard(real: D1Database) {
  const sqlOf = new WeakMap<object, string>();
  const prepared: string[] = [];
  const batched: { sql: string; rowsWritten: number }[] = [];
  const d1 = new Proxy(real, {
    get(target, property) {
      if (property === "prepare") {
        return (query: string) => {
          prepared.push(query);
          const statement = target.prepare(query);
          return new Proxy(statement, {
            get(inner, name) {
              if (name === "bind")
                return (...params: unknown[]) => {
                  const bound = inner.bind(...params);
                  sqlOf.set(bound, query);
                  return bound;
                };
              const value = Reflect.get(inner, name);
              return typeof value === "function" ? value.bind(inner) : value;
            },
          });
        };
      }
      if (property === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          const results = await target.batch(statements);
          results.forEach((result, i) => {
            const statement = statements[i];
            batched.push({ sql: (statement && sqlOf.get(statement)) ?? "", rowsWritten: result.meta.rows_written ?? 0 });
          });
          return results;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { d1, prepared, batched };
}

const isStripUpdate = (query: string) => query.startsWith('UPDATE "transactions"');

describe("archive names in the record (0034, happy)", () => {
  it("the finish lists the object's name in each record it archived, writes no archived_histories row, and one row a record for both", async () => {
    const shop = await merchantWithHistories(3);
    const metered = meteredShard(await dbFor(shop.merchantId));
    const step = await archiveMerchantHistory({
      db: openDatabase(metered.d1),
      bucket: env.ARCHIVE,
      merchantId: shop.merchantId,
      cutoff: FUTURE_CUTOFF,
      now: Date.now(),
    });
    expect(step).toMatchObject({ kind: "stored", transactions: 3, records: 21 });
    if (step.kind !== "stored") throw new Error("not stored");

    const name = archiveName(shop.merchantId, step.key);
    for (const id of shop.ids) expect(await namesOf(shop.merchantId, id)).toEqual([name]);
    expect(await tableRows(shop.merchantId)).toBe(0);
    expect(metered.prepared.filter((query) => /archived_histories/.test(query))).toEqual([]);
    // The strip UPDATE both strips the histories and lists the name: one row written per record, nothing more.
    const strips = metered.batched.filter((statement) => isStripUpdate(statement.sql));
    expect(strips).toHaveLength(1);
    expect(strips[0]?.rowsWritten).toBe(3);
    expect(await rowsInD1(shop.merchantId)).toEqual({ events: 0, operations: 0 });
    expect(await shop.answers()).toEqual(shop.before);
  });

  it("operations, events and the timeline read back the same; a later change (the CAS upsert) keeps the list, a second archive adds its name", async () => {
    const shop: Shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const payment = await shop.pay({ card: "4242424242424242", amount: "30.00", currency: "EUR" });
    await shop.relay({ rounds: 20 });
    await eventually(async () => expect((await historyAnswers(shop.merchant.api_key, payment.id)).events.events.length).toBeGreaterThan(0));
    await eventually(async () => {
      const truth = (await shop.truth()).transactions.find((t) => t.id === payment.id);
      const { transaction } = (await historyAnswers(shop.merchant.api_key, payment.id)).transaction as { transaction: { status: string } };
      expect(transaction.status).toBe(truth?.status);
    });
    const before = {
      answers: await historyAnswers(shop.merchant.api_key, payment.id),
      timeline: await timelineOf(shop.merchant.api_key, payment.id),
    };

    await archiveAll(merchantId);
    const first = (await ledger(merchantId)).map((object) => archiveName(merchantId, object.key));
    expect(first).toHaveLength(1);
    expect(await namesOf(merchantId, payment.id)).toEqual(first);
    expect(await rowsInD1(merchantId)).toEqual({ events: 0, operations: 0 });
    expect(await historyAnswers(shop.merchant.api_key, payment.id)).toEqual(before.answers);
    expect(await timelineOf(shop.merchant.api_key, payment.id)).toEqual(before.timeline);

    // A refund: its webhooks upsert the record (compare-and-set), which never names archive_names.
    await shop.act(payment.id, "refund", { amount: "10.00" });
    await shop.relay({ rounds: 20 });
    await eventually(async () => {
      const { transaction } = (await historyAnswers(shop.merchant.api_key, payment.id)).transaction as { transaction: { status: string } };
      expect(transaction.status).toBe("partially-refunded");
    });
    expect(await namesOf(merchantId, payment.id)).toEqual(first);
    const later = await historyAnswers(shop.merchant.api_key, payment.id);
    expect(later.events.events.slice(0, before.answers.events.events.length)).toEqual(before.answers.events.events);
    expect(later.operations.operations.slice(0, before.answers.operations.operations.length)).toEqual(before.answers.operations.operations);

    // Archived again: the second object's name is appended after the first.
    await archiveAll(merchantId);
    const both = (await ledger(merchantId)).map((object) => archiveName(merchantId, object.key));
    expect(both).toHaveLength(2);
    expect(await namesOf(merchantId, payment.id)).toEqual(both);
    expect(await historyAnswers(shop.merchant.api_key, payment.id)).toEqual(later);
    expect(await tableRows(merchantId)).toBe(0);
  });
});

describe("archive names in the record (0034, errors)", () => {
  it("a run that dies after the put, then two runs at once: the name is listed once, only once the object is stored", async () => {
    const shop = await merchantWithHistories(2);
    const step = async (bucket: ArchiveBucket = env.ARCHIVE) =>
      archiveMerchantHistory({
        db: await dbOfMerchant(shop.merchantId),
        bucket,
        merchantId: shop.merchantId,
        cutoff: FUTURE_CUTOFF,
        now: Date.now(),
      });
    await expect(step(failingBucket("dies after put"))).rejects.toThrow(/injected/);
    // The object is in R2 but still `writing`: no record names it yet.
    expect(await ledger(shop.merchantId)).toMatchObject([{ status: "writing" }]);
    for (const id of shop.ids) expect(await namesOf(shop.merchantId, id)).toBeNull();

    const steps = await Promise.all([step(), step()]);
    expect(steps.filter((one) => one.kind === "stored").length).toBeGreaterThanOrEqual(1);
    const [object] = await ledger(shop.merchantId);
    if (!object) throw new Error("no object");
    expect(object.status).toBe("stored");
    for (const id of shop.ids) expect(await namesOf(shop.merchantId, id)).toEqual([archiveName(shop.merchantId, object.key)]);
    expect(await step()).toEqual({ kind: "idle" });
    for (const id of shop.ids) expect(await namesOf(shop.merchantId, id)).toEqual([archiveName(shop.merchantId, object.key)]);
    expect(await shop.answers()).toEqual(shop.before);
  });

  it("the strip UPDATE run twice on a writing object lists the name once (appended in SQL only if absent)", async () => {
    const shop = await merchantWithHistories(2);
    await expect(
      archiveMerchantHistory({
        db: await dbOfMerchant(shop.merchantId),
        bucket: failingBucket("put refused"),
        merchantId: shop.merchantId,
        cutoff: FUTURE_CUTOFF,
        now: Date.now(),
      }),
    ).rejects.toThrow(/injected/);
    const d1 = await dbFor(shop.merchantId);
    const object = await d1
      .prepare("SELECT id, key FROM archive_objects WHERE merchant_id = ? AND status = 'writing'")
      .bind(shop.merchantId)
      .first<{ id: number; key: string }>();
    if (!object) throw new Error("no writing object");
    const writing = sql`${archiveObjects.id} = ${object.id} AND ${archiveObjects.status} = 'writing'`;
    const name = archiveName(shop.merchantId, object.key);
    const strip = deleteManifestRows(shop.merchantId, writing, name).find(
      (statement) => statement instanceof SQL && isStripUpdate(new SQLiteAsyncDialect().sqlToQuery(statement).sql),
    );
    if (!strip) throw new Error("no strip UPDATE");
    try {
      await runBatch(d1, [strip]);
      await runBatch(d1, [strip]);
      for (const transactionId of shop.ids) expect(await namesOf(shop.merchantId, transactionId)).toEqual([name]);
    } finally {
      // The strip ran without its finish: the object no longer matches D1, so a cron run in another file would refuse it.
      await d1.prepare("DELETE FROM archive_objects WHERE id = ?").bind(object.id).run();
    }
  });
});

describe("archive names in the record (0034, security)", () => {
  it("a record's names resolve under its own merchant's prefix only; another merchant's transaction finds no object", async () => {
    const [a, b] = [await merchantWithHistories(1), await merchantWithHistories(1)];
    await archiveAll(a.merchantId);
    await archiveAll(b.merchantId);
    const [aId] = a.ids;
    const [bId] = b.ids;
    if (!aId || !bId) throw new Error("no transactions");
    const keysOf = async (merchantId: string, transactionId: string) =>
      (await archivedObjectsOf({ db: await dbOfMerchant(merchantId), merchantId, transactionId })).map((row) => row.key);
    const aKeys = await keysOf(a.merchantId, aId);
    expect(aKeys).toEqual((await ledger(a.merchantId)).map((object) => object.key));
    expect(aKeys.every((key) => key.startsWith(`history/${a.merchantId}/`))).toBe(true);
    // A's scope never reaches B's record, nor B's objects.
    expect(await keysOf(a.merchantId, bId)).toEqual([]);
    expect((await getWithKey(`/v1/transactions/${bId}/operations`, a.merchant.api_key)).status).toBe(404);
    expect((await getWithKey(`/v1/transactions/${bId}/timeline`, a.merchant.api_key)).status).toBe(404);
    expect(() => archiveName(a.merchantId, (aKeys[0] ?? "").replace(a.merchantId, b.merchantId))).toThrow(/not one of/);
    expect(await b.answers()).toEqual(b.before);
  });
});

describe("archived_histories rows: 0034 listed them in the column, 0035 empties the table", () => {
  /** Turns a record's names back into rows of the table, as the code before 0034 wrote them. */
  async function asBefore0034(merchantId: string, transactionId: string) {
    const d1 = await dbFor(merchantId);
    await d1.batch([
      d1
        .prepare(
          `INSERT INTO archived_histories (merchant_id, transaction_id, archive_id)
           SELECT ?1, ?2, o.id FROM archive_objects AS o WHERE o.merchant_id = ?1 AND o.status = 'stored'`,
        )
        .bind(merchantId, transactionId),
      d1.prepare("UPDATE transactions SET archive_names = NULL WHERE merchant_id = ? AND id = ?").bind(merchantId, transactionId),
    ]);
  }

  const backfill0034 = () => {
    const migration = env.TEST_MIGRATIONS.find((one) => one.name.startsWith("0034_"));
    const backfill = migration?.queries.find((query) => query.includes("UPDATE `transactions` SET `archive_names`"));
    if (!backfill) throw new Error("0034 has no backfill");
    return backfill;
  };

  it("0034's backfill lists a history archived before it in the column; 0035 then empties the table, the names listed once", async () => {
    const shop = await merchantWithHistories(2);
    await archiveAll(shop.merchantId);
    const names = await Promise.all(shop.ids.map((id) => namesOf(shop.merchantId, id)));
    for (const id of shop.ids) await asBefore0034(shop.merchantId, id);
    expect(await namesOf(shop.merchantId, shop.ids[0] ?? "")).toBeNull();
    // The code reads the records' names only (0035): the table's rows alone find no archive object.
    expect((await shop.answers())[0]?.operations.operations).toEqual([]);

    const d1 = await dbFor(shop.merchantId);
    await d1.prepare(backfill0034()).run();
    expect(await Promise.all(shop.ids.map((id) => namesOf(shop.merchantId, id)))).toEqual(names);
    // Column and table both name the objects (0034 kept the table for old code) until 0035 deletes the table's rows.
    expect(await tableRows(shop.merchantId)).toBe(2);
    expect(await shop.answers()).toEqual(shop.before);
    await run0035(d1);
    expect(await tableRows(shop.merchantId)).toBe(0);
    expect(await Promise.all(shop.ids.map((id) => namesOf(shop.merchantId, id)))).toEqual(names);
    expect(await shop.answers()).toEqual(shop.before);
  });

  it("0034's backfill and 0035 leave a merchant fenced by a move alone: no failure, its rows stay in the table", async () => {
    const shop = await merchantWithHistories(1);
    await archiveAll(shop.merchantId);
    const [id] = shop.ids;
    if (!id) throw new Error("no transaction");
    await asBefore0034(shop.merchantId, id);
    const d1 = await dbFor(shop.merchantId);
    await d1
      .prepare("INSERT INTO move_marks (merchant_id, move_id, state) VALUES (?, 'mov_backfill_test', 'fenced')")
      .bind(shop.merchantId)
      .run();
    try {
      await d1.prepare(backfill0034()).run();
      await run0035(d1);
      expect(await namesOf(shop.merchantId, id)).toBeNull();
      expect(await tableRows(shop.merchantId)).toBe(1);
    } finally {
      await d1.prepare("DELETE FROM move_marks WHERE merchant_id = ? AND move_id = 'mov_backfill_test'").bind(shop.merchantId).run();
    }
  });
});
