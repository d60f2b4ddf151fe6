import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { TransactionSnapshot } from "../../../src/smart-router/schemas";
import { apply, op, snapshot } from "../../support/apply";
import { createMerchant } from "../../support/fixtures";
import { run0035 } from "../../support/legacy-histories";
import { meteredD1 } from "../../support/recording-d1";
import { dbFor } from "../../support/shards";
import { getJson, seedTableOperation, seedTransaction } from "../../support/status-api";

// 0030: a transaction's operations are its record's `operation_history`, written by the record's own upsert. These
// tests drive the apply itself (as concurrency.test.ts does) and read what it stored.

/** The record's stored history as the column holds it. */
async function storedHistory(merchantId: string, transactionId: string) {
  const row = await (await dbFor(merchantId))
    .prepare("SELECT status, operation_history FROM transactions WHERE merchant_id = ? AND id = ?")
    .bind(merchantId, transactionId)
    .first<{ status: string; operation_history: string | null }>();
  const history = row?.operation_history ? (JSON.parse(row.operation_history) as Record<string, unknown>[]) : [];
  return { status: row?.status, history, ids: history.map((entry) => String(entry.id)).sort() };
}

const tableRows = async (merchantId: string) =>
  (
    await (
      await dbFor(merchantId)
    )
      .prepare("SELECT count(*) AS n FROM operations WHERE merchant_id = ?")
      .bind(merchantId)
      .first<{ n: number }>()
  )?.n;

const idsOf = (transactionId: string, count: number) => Array.from({ length: count }, (_, n) => op(transactionId, n, "x").id).sort();

describe("operation history folded into the record (0030)", () => {
  it("a payment's webhooks write no operation rows; its history is the record's, listed as before", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const id = `tr_fold${Date.now().toString(36)}a`;
    await apply(merchantId, [snapshot(id, "authorized", 2)]);
    await apply(merchantId, [
      snapshot(id, "completed", 4, {
        operations: [...(snapshot(id, "x", 4).operations ?? [])].map((o, n) =>
          n === 3 ? { ...o, metadata: { k: "v" }, has_failed: null } : o,
        ),
      }),
    ]);
    expect(await tableRows(merchantId)).toBe(0);
    expect((await storedHistory(merchantId, id)).ids).toEqual(idsOf(id, 4));
    const listed = await getJson<{ operations: Record<string, unknown>[] }>(`/v1/transactions/${id}/operations`, merchant.api_key);
    expect(listed.operations.map((o) => o.id)).toEqual(idsOf(id, 4));
    expect(listed.operations[3]).toEqual({
      id: op(id, 3, "capture").id,
      type: "capture",
      amount: "10.00",
      currency: "EUR",
      is_attempt: false,
      has_failed: null,
      is_accountable: null,
      gateway_operation_id: null,
      error_code: null,
      error_message: null,
      payment_type: null,
      metadata: { k: "v" },
      created_at: op(id, 3, "capture").created_at,
    });
  });

  it("the apply's D1 batch writes the same rows whether a snapshot carries 4 operations or 40", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const written = async (count: number) => {
      const id = `tr_fold${Date.now().toString(36)}n${count}`;
      await apply(merchantId, [snapshot(id, "authorized", 2)]);
      const { d1, meter } = meteredD1(await dbFor(merchantId));
      await apply(merchantId, [snapshot(id, "completed", count)], d1);
      expect((await storedHistory(merchantId, id)).ids).toEqual(idsOf(id, count));
      return meter;
    };
    const few = await written(4);
    const many = await written(40);
    expect(few.rowsWritten).toBeGreaterThan(0);
    expect(many.rowsWritten).toBe(few.rowsWritten);
    expect([...few.sql, ...many.sql].filter((sql) => /\b(INTO|UPDATE|FROM)\s+"?operations"?\b/i.test(sql))).toEqual([]);
  });

  it("a stale snapshot changes nothing, and a null operations list never erases the history", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const id = `tr_fold${Date.now().toString(36)}s`;
    await apply(merchantId, [snapshot(id, "completed", 4)]);
    const { d1, meter } = meteredD1(await dbFor(merchantId));
    await apply(merchantId, [snapshot(id, "authorized", 2)], d1);
    expect(meter.sql.some((sql) => sql.includes("operation_history"))).toBe(false);
    await apply(merchantId, [snapshot(id, "completed", null, { refunded_amount: "1.00" })]);
    const stored = await storedHistory(merchantId, id);
    expect(stored).toMatchObject({ status: "completed", ids: idsOf(id, 4) });
  });

  it("a snapshot refused only for leaving a captured status still adds the operations it brings", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const id = `tr_fold${Date.now().toString(36)}r`;
    await apply(merchantId, [snapshot(id, "completed", 4)]);
    await apply(merchantId, [snapshot(id, "authorized", 5)]);
    expect(await storedHistory(merchantId, id)).toMatchObject({ status: "completed", ids: idsOf(id, 5) });
    // Once more: nothing new, nothing written twice.
    await apply(merchantId, [snapshot(id, "authorized", 5)]);
    expect((await storedHistory(merchantId, id)).history).toHaveLength(5);
  });

  it("an operation keeps its fields as first stored when a newer snapshot repeats it changed", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const id = `tr_fold${Date.now().toString(36)}f`;
    await apply(merchantId, [snapshot(id, "authorized", 2)]);
    const changed = snapshot(id, "completed", 3);
    const first = changed.operations?.[0];
    if (!first) throw new Error("no operation");
    changed.operations = [{ ...first, error_code: "changed" }, ...(changed.operations ?? []).slice(1)];
    await apply(merchantId, [changed]);
    const stored = await storedHistory(merchantId, id);
    expect(stored.ids).toEqual(idsOf(id, 3));
    expect(stored.history.find((entry) => entry.id === first.id)).not.toHaveProperty("error_code");
  });

  it("any order, duplicates and batch splits store every operation once", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 4 }),
        async (order, cuts) => {
          run += 1;
          const id = `tr_fold${Date.now().toString(36)}p${run}`;
          // Five snapshots of a growing history: authorized (1, 2 operations), completed (3, 4), a refund (6).
          const all = [
            snapshot(id, "authorized", 1),
            snapshot(id, "authorized", 2),
            snapshot(id, "completed", 3),
            snapshot(id, "completed", 4),
            snapshot(id, "completed", 6),
          ];
          const chosen = order.map((k) => all[k] as TransactionSnapshot);
          let at = 0;
          for (const cut of cuts) {
            if (at >= chosen.length) break;
            await apply(merchantId, chosen.slice(at, at + cut));
            at += cut;
          }
          if (at < chosen.length) await apply(merchantId, chosen.slice(at));
          const most = Math.max(...order.map((k) => [1, 2, 3, 4, 6][k] ?? 0));
          const stored = await storedHistory(merchantId, id);
          expect(stored.ids).toEqual(idsOf(id, most));
          expect(new Set(stored.ids).size).toBe(stored.history.length);
        },
      ),
      { numRuns: Math.min(40, Number(env.PROPERTY_RUNS ?? 40)) },
    );
  });
});

describe("migration 0030 folds the table's operations into their records", () => {
  it("its backfill puts the table's operations in the records, and leaves a fenced merchant's rows alone (0035 merges them)", async () => {
    const migration = env.TEST_MIGRATIONS.find((m) => m.name.startsWith("0030_"));
    const backfill = migration?.queries.find(
      (q) => q.startsWith("UPDATE `transactions`") || q.includes("UPDATE `transactions` SET `operation_history`"),
    );
    if (!backfill) throw new Error("0030 has no backfill statement");
    const [a, fenced] = [await createMerchant(), await createMerchant()];
    const seeded: { merchant: Awaited<ReturnType<typeof createMerchant>>; row: { id: string } }[] = [];
    for (const merchant of [a, fenced]) {
      const merchantId = merchant.merchant.id;
      const row = await seedTransaction(merchantId, { status: "completed" });
      await seedTableOperation({
        merchantId,
        transactionId: row.id,
        id: `${row.id}_op1`,
        isAttempt: true,
        hasFailed: null,
        metadata: { k: "v" },
      });
      await seedTableOperation({
        merchantId,
        transactionId: row.id,
        id: `${row.id}_op2`,
        type: "capture",
        isAccountable: false,
        createdAt: "2026-01-01T10:05:00.000Z",
      });
      seeded.push({ merchant, row });
    }
    const shardOf = await dbFor(fenced.merchant.id);
    await shardOf
      .prepare("INSERT INTO move_marks (merchant_id, move_id, state) VALUES (?, 'mv_fold', 'fenced')")
      .bind(fenced.merchant.id)
      .run();
    const answers = () =>
      Promise.all(
        seeded.map(async ({ merchant, row }) =>
          (await getJson<{ operations: { id: string }[] }>(`/v1/transactions/${row.id}/operations`, merchant.api_key)).operations.map(
            (o) => o.id,
          ),
        ),
      );
    // The code reads the records' histories only (0035): the table's rows are in no answer until a backfill moves them.
    expect(await answers()).toEqual([[], []]);
    for (const shard of [env.DB, env.DB_SHARD_1]) await shard.prepare(backfill).run();
    await shardOf.prepare("DELETE FROM move_marks WHERE merchant_id = ?").bind(fenced.merchant.id).run();
    expect(await answers()).toEqual([[`${seeded[0]?.row.id}_op1`, `${seeded[0]?.row.id}_op2`], []]);
    expect(await tableRows(fenced.merchant.id)).toBe(2);
    expect((await storedHistory(fenced.merchant.id, seeded[1]?.row.id ?? "")).history).toEqual([]);
    // Unfenced, 0035 (this release's contract step) merges them.
    await run0035(shardOf);
    expect((await answers())[1]).toEqual([`${seeded[1]?.row.id}_op1`, `${seeded[1]?.row.id}_op2`]);
    expect(await tableRows(fenced.merchant.id)).toBe(0);
    expect((await storedHistory(a.merchant.id, seeded[0]?.row.id ?? "")).ids).toEqual([
      `${seeded[0]?.row.id}_op1`,
      `${seeded[0]?.row.id}_op2`,
    ]);
  });
});

/** The record's status history as stored, and the table's rows of the merchant. */
async function statusStorage(merchantId: string, transactionId: string) {
  const shard = await dbFor(merchantId);
  const row = await shard
    .prepare("SELECT status_history FROM transactions WHERE merchant_id = ? AND id = ?")
    .bind(merchantId, transactionId)
    .first<{ status_history: string | null }>();
  const table = await shard
    .prepare("SELECT count(*) AS n FROM transaction_status_changes WHERE merchant_id = ?")
    .bind(merchantId)
    .first<{ n: number }>();
  return { entries: row?.status_history ? (JSON.parse(row.status_history) as Record<string, string>[]) : [], tableRows: table?.n };
}

interface TimelineEntry {
  kind: string;
  at: string;
  detail: { from?: string | null; to?: string; cause?: { kind: string; event_id?: string } };
}
const stateChanges = async (apiKey: string, id: string) =>
  (await getJson<{ timeline: TimelineEntry[] }>(`/v1/transactions/${id}/timeline`, apiKey)).timeline.filter(
    (entry) => entry.kind === "state_change",
  );

describe("status history folded into the record (0030)", () => {
  it("a status change is an entry of the record, none of the table; an edit that keeps the status adds none", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const id = `tr_fold${Date.now().toString(36)}h`;
    await apply(merchantId, [snapshot(id, "authorized", 2)]);
    await apply(merchantId, [snapshot(id, "completed", 4)]);
    await apply(merchantId, [snapshot(id, "completed", 5)]);
    await apply(merchantId, [snapshot(id, "authorized", 2)]);
    const stored = await statusStorage(merchantId, id);
    expect(stored.tableRows).toBe(0);
    expect(stored.entries.map(({ from, to }) => ({ from, to }))).toEqual([
      { from: undefined, to: "authorized" },
      { from: "authorized", to: "completed" },
    ]);
    const record = await (await dbFor(merchantId))
      .prepare("SELECT updated_at FROM transactions WHERE merchant_id = ? AND id = ?")
      .bind(merchantId, id)
      .first<{ updated_at: string }>();
    expect(stored.entries[1]?.event_name).toBe("transaction.completed");
    const shown = await stateChanges(merchant.api_key, id);
    expect(shown.map((entry) => entry.detail.to)).toEqual(["authorized", "completed"]);
    expect(shown[1]?.detail.from).toBe("authorized");
    expect(shown[1]?.detail.cause?.kind).toBe("event");
    expect(shown[1]?.at).toBe(stored.entries[1]?.at);
    // Stamped by the write that made it: before the later edit's stamp (which kept the status and added no entry).
    expect(String(stored.entries[1]?.at) <= String(record?.updated_at)).toBe(true);
  });

  it("migration 0030 moves the table's status changes into the record, which the timeline then shows", async () => {
    const migration = env.TEST_MIGRATIONS.find((m) => m.name.startsWith("0030_"));
    const statements =
      migration?.queries.filter((q) => q.includes("`status_history` = (") || q.includes("DELETE FROM `transaction_status_changes`")) ?? [];
    expect(statements).toHaveLength(2);
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const row = await seedTransaction(merchantId, { status: "completed" });
    const shard = await dbFor(merchantId);
    const insert =
      "INSERT INTO transaction_status_changes (merchant_id, transaction_id, at, from_status, to_status, event_id, event_name, read_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    await shard.batch([
      shard
        .prepare(insert)
        .bind(merchantId, row.id, "2026-01-01T10:00:00.000Z", null, "authorized", "ev_a", "transaction.authorized", null),
      shard
        .prepare(insert)
        .bind(merchantId, row.id, "2026-01-01T10:05:00.000Z", "authorized", "completed", null, null, "2026-01-01T10:04:59.000Z"),
    ]);
    // The code reads the record's history only (0035): the table's rows show once the migration moved them.
    expect(await stateChanges(merchant.api_key, row.id)).toEqual([]);
    for (const statement of statements) await shard.prepare(statement).run();
    const shown = await stateChanges(merchant.api_key, row.id);
    expect(shown.map((entry) => [entry.at, entry.detail.from ?? null, entry.detail.to])).toEqual([
      ["2026-01-01T10:00:00.000Z", null, "authorized"],
      ["2026-01-01T10:05:00.000Z", "authorized", "completed"],
    ]);
    expect(shown[0]?.detail.cause).toMatchObject({ kind: "event", event_id: "ev_a" });
    const stored = await statusStorage(merchantId, row.id);
    expect(stored.tableRows).toBe(0);
    expect(stored.entries.map((entry) => entry.to)).toEqual(["authorized", "completed"]);
  });
});
