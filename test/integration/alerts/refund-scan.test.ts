import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { SCANNED_MERCHANTS_PER_RUN, SCANNED_PER_MERCHANT } from "../../../src/alerts/evaluate";
import { runAlertChecks } from "../../../src/alerts/scheduled";
import { openDatabase } from "../../../src/db/client";
import { createMerchant } from "../../support/fixtures";
import { dbFor, SHARDS } from "../../support/shards";
import { seedTransaction, uniqueTransactionId } from "../../support/status-api";
import { checkAlerts, scanCaughtUp } from "./support";

/**
 * The refund scan (src/alerts/evaluate.ts) reads each merchant's changed records from a watermark of its own, at most
 * SCANNED_PER_MERCHANT of SCANNED_MERCHANTS_PER_RUN merchants a run, least recently read first. Records are seeded
 * straight into the shard and runs are the cron's alert step on that shard.
 */

const SCAN = "refunded_more_than_captured";

/** One alert run on a shard, as the cron's step runs it. */
const runOn = (shard: D1Database, now = Date.now()) => runAlertChecks({ env, db: openDatabase(shard), now });

/** A record refunded beyond its capture, changed at `updatedAt` (now by default). */
const refundBeyondCapture = (merchantId: string, updatedAt = new Date().toISOString()) =>
  seedTransaction(merchantId, { status: "refunded", capturedAmount: "10.00", refundedAmount: "12.50", updatedAt });

/** The merchant's watermark: the last record the scan read, in its (updated_at, id) order. */
async function markOf(shard: D1Database, merchantId: string) {
  return shard
    .prepare("SELECT updated_at, transaction_id FROM alert_scans WHERE merchant_id = ? AND name = ?")
    .bind(merchantId, SCAN)
    .first<{ updated_at: string; transaction_id: string }>();
}

/** The merchant's refund alerts: transaction id → how many (one per condition, whatever the runs). */
async function refundAlertsOf(shard: D1Database, merchantId: string): Promise<Map<string, number>> {
  const { results } = await shard
    .prepare("SELECT transaction_id AS id, count(*) AS n FROM alerts WHERE merchant_id = ? AND kind = ? GROUP BY transaction_id")
    .bind(merchantId, SCAN)
    .all<{ id: string; n: number }>();
  return new Map(results.map((row) => [row.id, row.n]));
}

/**
 * `count` merchants on one shard: merchants are created until that many share one (placement spreads them), at most
 * 3 × count + 4 (fewer than count share a shard only with more than 3 shards).
 */
async function merchantsOnOneShard(count: number): Promise<{ shard: D1Database; ids: string[] }> {
  const byShard = new Map<D1Database, string[]>();
  for (let created = 0; created < 3 * count + 4; created++) {
    const { merchant } = await createMerchant();
    const shard = await dbFor(merchant.id);
    const ids = [...(byShard.get(shard) ?? []), merchant.id];
    byShard.set(shard, ids);
    if (ids.length === count) return { shard, ids };
  }
  throw new Error(`no ${count} merchants on one shard of ${SHARDS.length}`);
}

/**
 * `count` captured records of the merchant, changed one millisecond apart from `from` (ids `tr_<prefix>00001`…, in
 * that order): a backlog of changes the scan reads in order.
 */
async function seedChanges(
  shard: D1Database,
  merchantId: string,
  { prefix, count, from }: { prefix: string; count: number; from: string },
) {
  await shard
    .prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
       INSERT INTO transactions (merchant_id, id, project_id, status, currency, amount, authorized_amount, captured_amount,
         refunded_amount, available_amount, voided_amount, metadata, sandbox, created_at, snapshot_version, updated_at)
       SELECT ?1, 'tr_' || ?3 || printf('%05d', i), 'test-proj_seed', 'completed', 'EUR', '10.00', '10.00', '10.00', '0',
         '10.00', '0', '{}', 1, '2026-01-01T00:00:00.000Z', '0001', strftime('%Y-%m-%dT%H:%M:%fZ', ?4, '+' || (i / 1000.0) || ' seconds')
       FROM n`,
    )
    .bind(merchantId, count, prefix, from)
    .run();
  return (i: number) => `tr_${prefix}${String(i).padStart(5, "0")}`;
}

beforeAll(async () => {
  // The scan has started on every shard (a first run reads nothing), and what other test files changed is read first:
  // every run below then reads this file's merchants alone.
  await checkAlerts();
  await scanCaughtUp();
});

describe("the refund scan reads each merchant's changes from its own watermark", () => {
  it("reads SCANNED_PER_MERCHANT of a merchant's changes a run, in order, and its thousands hold up no other merchant", async () => {
    const { shard, ids } = await merchantsOnOneShard(2);
    const [busy = "", quiet = ""] = ids;
    const backlog = 2 * SCANNED_PER_MERCHANT + 500;
    const id = await seedChanges(shard, busy, { prefix: `bl${Date.now().toString(36)}`, count: backlog, from: new Date().toISOString() });
    // Two of its changes are refunds beyond capture: one early in the backlog, one its newest change.
    const refundAt = (i: number) =>
      shard
        .prepare("UPDATE transactions SET status = 'refunded', refunded_amount = '12.50' WHERE merchant_id = ? AND id = ?")
        .bind(busy, id(i))
        .run();
    await refundAt(10);
    await refundAt(backlog);
    const other = await refundBeyondCapture(quiet);

    // Run 1: the quiet merchant's refund is found at once; the busy one's first SCANNED_PER_MERCHANT changes are read.
    await runOn(shard);
    expect(await refundAlertsOf(shard, quiet)).toEqual(new Map([[other.id, 1]]));
    expect(await refundAlertsOf(shard, busy)).toEqual(new Map([[id(10), 1]]));
    expect((await markOf(shard, busy))?.transaction_id).toBe(id(SCANNED_PER_MERCHANT));

    // Run 2: the next SCANNED_PER_MERCHANT; run 3: the rest, up to its newest change, where the scan ends for it.
    await runOn(shard);
    expect((await markOf(shard, busy))?.transaction_id).toBe(id(2 * SCANNED_PER_MERCHANT));
    expect((await refundAlertsOf(shard, busy)).has(id(backlog))).toBe(false);
    await runOn(shard);
    expect((await markOf(shard, busy))?.transaction_id).toBe(id(backlog));
    expect(await refundAlertsOf(shard, busy)).toEqual(
      new Map([
        [id(10), 1],
        [id(backlog), 1],
      ]),
    );

    // Nothing is read twice: a run with no change leaves the watermark and opens nothing more.
    await runOn(shard);
    expect((await markOf(shard, busy))?.transaction_id).toBe(id(backlog));
    expect(await refundAlertsOf(shard, busy)).toEqual(
      new Map([
        [id(10), 1],
        [id(backlog), 1],
      ]),
    );
    expect(await refundAlertsOf(shard, quiet)).toEqual(new Map([[other.id, 1]]));
  });

  it("reads SCANNED_MERCHANTS_PER_RUN merchants a run, least recently read first: none waits behind merchants that keep changing", async () => {
    const count = SCANNED_MERCHANTS_PER_RUN + 5;
    const { shard, ids } = await merchantsOnOneShard(count);
    const refunds = new Map<string, string>();
    for (const merchantId of ids) refunds.set(merchantId, (await refundBeyondCapture(merchantId)).id);
    const alerted = async () => {
      const found: string[] = [];
      for (const merchantId of ids) if ((await refundAlertsOf(shard, merchantId)).size > 0) found.push(merchantId);
      return found;
    };

    await runOn(shard);
    const first = await alerted();
    expect(first.length).toBeGreaterThan(0);
    expect(first.length).toBeLessThanOrEqual(SCANNED_MERCHANTS_PER_RUN);

    // Every merchant changes again before the next run: those read first must not be read again ahead of the others.
    const later = new Date(Date.now() + 1000).toISOString();
    for (const merchantId of ids) {
      await shard.prepare("UPDATE transactions SET updated_at = ? WHERE merchant_id = ?").bind(later, merchantId).run();
    }
    await runOn(shard);
    expect((await alerted()).length).toBe(count);
    for (const merchantId of ids) expect(await refundAlertsOf(shard, merchantId)).toEqual(new Map([[refunds.get(merchantId), 1]]));
  });

  it("never moves a watermark back: a run that read less than an overlapping run committed leaves the further watermark", async () => {
    const { merchant } = await createMerchant();
    const shard = await dbFor(merchant.id);
    await refundBeyondCapture(merchant.id);
    await runOn(shard);
    const refund = await refundBeyondCapture(merchant.id, new Date(Date.now() + 1000).toISOString());
    // Another run, overlapping this one, read further and committed first: its watermark is past this run's horizon.
    const further = { updated_at: new Date(Date.now() + 60_000).toISOString(), transaction_id: uniqueTransactionId() };
    const overlapped = new Proxy(shard, {
      get(target, property) {
        if (property !== "batch") {
          const value = Reflect.get(target, property);
          return typeof value === "function" ? value.bind(target) : value;
        }
        return async (statements: D1PreparedStatement[]) => {
          await target
            .prepare("UPDATE alert_scans SET updated_at = ?, transaction_id = ? WHERE merchant_id = ? AND name = ?")
            .bind(further.updated_at, further.transaction_id, merchant.id, SCAN)
            .run();
          return target.batch(statements);
        };
      },
    });

    await runOn(overlapped);
    expect(await markOf(shard, merchant.id)).toEqual(further);
    // This run still opened what it read.
    expect((await refundAlertsOf(shard, merchant.id)).get(refund.id)).toBe(1);
  });

  it("two runs at once open each refund once and leave the watermark at the newest change read", async () => {
    const { merchant } = await createMerchant();
    const shard = await dbFor(merchant.id);
    const refunds = [await refundBeyondCapture(merchant.id), await refundBeyondCapture(merchant.id)];
    await Promise.all([runOn(shard), runOn(shard)]);
    expect(await refundAlertsOf(shard, merchant.id)).toEqual(new Map(refunds.map((refund) => [refund.id, 1])));
    const newest = [...refunds].sort((a, b) => (a.updatedAt ?? "").localeCompare(b.updatedAt ?? "") || a.id.localeCompare(b.id)).at(-1);
    expect(await markOf(shard, merchant.id)).toEqual({ updated_at: newest?.updatedAt, transaction_id: newest?.id });
  });

  it("reads all the changes of a merchant registered after the scan started, however old their times", async () => {
    const { merchant } = await createMerchant();
    const shard = await dbFor(merchant.id);
    expect(await markOf(shard, "")).not.toBeNull();
    expect(await markOf(shard, merchant.id)).toBeNull();
    // Changed long before every other merchant's watermark: a shard-wide watermark would have passed it.
    const refund = await refundBeyondCapture(merchant.id, "2025-01-01T00:00:00.000Z");
    await runOn(shard);
    expect(await refundAlertsOf(shard, merchant.id)).toEqual(new Map([[refund.id, 1]]));
    expect(await markOf(shard, merchant.id)).toEqual({ updated_at: refund.updatedAt, transaction_id: refund.id });
  });

  it("a first run starts each merchant at its newest record: what was refunded before is not looked for, what comes after is", async () => {
    const { merchant } = await createMerchant();
    const shard = await dbFor(merchant.id);
    const before = await refundBeyondCapture(merchant.id);
    // The scan has never run on the shard.
    await shard.prepare("DELETE FROM alert_scans WHERE name = ?").bind(SCAN).run();

    await runOn(shard);
    expect(await markOf(shard, "")).not.toBeNull();
    expect(await markOf(shard, merchant.id)).toEqual({ updated_at: before.updatedAt, transaction_id: before.id });
    await runOn(shard);
    expect((await refundAlertsOf(shard, merchant.id)).size).toBe(0);

    const after = await refundBeyondCapture(merchant.id, new Date(Date.now() + 1000).toISOString());
    await runOn(shard);
    expect(await refundAlertsOf(shard, merchant.id)).toEqual(new Map([[after.id, 1]]));
  });
});
