import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../../src/index";
import { ADMIN, call } from "../../support/fixtures";
import { eventually, openShop, type Shop } from "../../support/sandbox";
import { SHARDS, shardedDb, shardIndexOf } from "../../support/shards";
import { seedTransaction, seedTransactions, transactionRow } from "../../support/status-api";

const statusOf = async (merchantId: string, id: string) =>
  (
    await shardedDb
      .prepare("SELECT status FROM transactions WHERE merchant_id = ? AND id = ?")
      .bind(merchantId, id)
      .first<{ status: string }>()
  )?.status;

async function runCron(at: string) {
  const ctx = createExecutionContext();
  await worker.scheduled?.(createScheduledController({ scheduledTime: Date.parse(at), cron: "*/5 * * * *" }), env, ctx);
  await waitOnExecutionContext(ctx);
}

/**
 * Ages a record as if nothing had touched it since `at`. The test files share one D1 database, and reconciliation looks at
 * every merchant's records, so each test runs its cron on its own date long before anything else stored, and earlier
 * than the dates of the tests above it (2001-03, 2001-02, 2001-01, 2000-12, 2000-11): records left by other tests are all
 * newer and never stale for it, and its run is found by its start time.
 */
async function lastTouchedAt(merchantId: string, id: string, at: string) {
  await shardedDb.prepare("UPDATE transactions SET updated_at = ? WHERE merchant_id = ? AND id = ?").bind(at, merchantId, id).run();
}

type Run = { started_at: string; found: number; refreshed: number; fixed: number };
/** The cron run at `at`: its reconciliation run on each shard (src/db/shards.ts), figures added up; undefined if none. */
async function runStartedAt(at: string): Promise<Run | undefined> {
  const parts: Run[] = [];
  let cursor: string | null = null;
  // Newest first: ends at the page that reaches past `at`, or the last page (each cron run adds one run per shard).
  for (let page = 0; page < 100; page += 1) {
    const query: string = cursor ? `?cursor=${cursor}` : "";
    const response = await call(`/admin/reconciliation/runs${query}`, { headers: ADMIN });
    const body = (await response.json()) as { runs: Run[]; next_cursor: string | null };
    parts.push(...body.runs.filter((run) => run.started_at === at));
    cursor = body.next_cursor;
    const oldest = body.runs.at(-1);
    if (cursor === null || (oldest !== undefined && oldest.started_at < at)) break;
  }
  if (parts.length === 0) return undefined;
  const sum = (field: "found" | "refreshed" | "fixed") => parts.reduce((total, run) => total + run[field], 0);
  return { started_at: at, found: sum("found"), refreshed: sum("refreshed"), fixed: sum("fixed") };
}

describe("reconciliation", () => {
  it("brings a payment whose completion webhook was dropped to its true state", async () => {
    const shop = await openShop({ unlimited: true, fulfillment: true, settings: { auto_advance: false } });
    const merchantId = shop.merchant.merchant.id;
    const payment = await shop.pay({ apm: "sandbox-apm", flow: "one-step", amount: "49.90", currency: "EUR" });
    await shop.relay({ rounds: 5 });
    await eventually(async () => expect(await statusOf(merchantId, payment.id)).toBe("pending"));

    // Smart Router gives up on every delivery from now on: the completion is never delivered.
    await shop.settings({ chaos: { drop_rate: 1 } });
    await shop.act(payment.id, "complete");
    await shop.relay({ rounds: 5 });
    const truth = (await shop.truth()).transactions.find((t) => t.id === payment.id);
    expect(truth?.status).toBe("completed");
    expect(await statusOf(merchantId, payment.id)).toBe("pending");

    // Half an hour after the last update, the cron finds the record stuck in a non-final status and refreshes it in the
    // batch lane.
    await lastTouchedAt(merchantId, payment.id, "2001-03-01T00:00:00.000Z");
    await runCron("2001-03-01T00:31:00.000Z");
    await eventually(async () => expect(await statusOf(merchantId, payment.id)).toBe("completed"), { timeoutMs: 15_000 });
    const run = await eventually(async () => {
      const row = await runStartedAt("2001-03-01T00:31:00.000Z");
      expect(row).toMatchObject({ found: 1, refreshed: 1 });
      return row;
    });
    // The same cron run walks the event log too (the backstop): whichever of the two comes first brings the capture.
    const completion = (await shop.truth()).events.find((e) => e.transaction_id === payment.id && e.name === "transaction.captured");
    const walked = await shardedDb
      .prepare("SELECT outcome FROM events WHERE merchant_id = ? AND id = ?")
      .bind(merchantId, completion?.id ?? "")
      .first<{ outcome: string }>();
    expect(run?.fixed === 1 || walked?.outcome === "applied").toBe(true);
    // The capture seen through reconciliation triggers the fulfilment like any other.
    await eventually(async () => {
      const row = await shardedDb
        .prepare("SELECT status FROM fulfillments WHERE merchant_id = ? AND transaction_id = ?")
        .bind(merchantId, payment.id)
        .first<{ status: string }>();
      expect(row?.status).toBe("delivered");
    });
  }, 30_000);

  it("leaves settled records alone and does not refresh one twice in a row", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const declined = await shop.pay({ card: "4000000000000002", amount: "5.00", currency: "EUR" });
    const held = await shop.pay({ card: "4242424242424242", amount: "6.00", currency: "EUR", capture: "manual" });
    await shop.relay({ rounds: 5 });
    await eventually(async () => {
      expect(await statusOf(merchantId, declined.id)).toBe("failed");
      expect(await statusOf(merchantId, held.id)).toBe("authorized");
    });
    await lastTouchedAt(merchantId, declined.id, "2001-02-01T00:00:00.000Z");
    await lastTouchedAt(merchantId, held.id, "2001-02-01T00:00:00.000Z");
    await runCron("2001-02-01T00:31:00.000Z");
    await eventually(async () => {
      const row = await shardedDb
        .prepare("SELECT reconciled_at FROM transactions WHERE merchant_id = ? AND id = ?")
        .bind(merchantId, held.id)
        .first<{ reconciled_at: string | null }>();
      expect(row?.reconciled_at).not.toBeNull();
    });
    await runCron("2001-02-01T00:32:00.000Z");
    // Only the authorized one (awaiting a manual capture) was stale, not the declined one; right after its refresh it is
    // not picked again.
    expect((await runStartedAt("2001-02-01T00:31:00.000Z"))?.found).toBe(1);
    expect((await runStartedAt("2001-02-01T00:32:00.000Z"))?.found).toBe(0);
  }, 30_000);

  it("asks Smart Router about a record it does not know once per window, not on every run", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const unknown = await seedTransaction(merchantId, {
      id: `tr_unknown${crypto.randomUUID().replaceAll("-", "")}`,
      projectId: shop.projectId,
      status: "pending",
      updatedAt: "2001-01-01T00:00:00.000Z",
    });
    await runCron("2001-01-01T00:31:00.000Z");
    await eventually(async () => {
      const row = await shardedDb
        .prepare("SELECT reconciled_at FROM transactions WHERE merchant_id = ? AND id = ?")
        .bind(merchantId, unknown.id)
        .first<{ reconciled_at: string | null }>();
      expect(row?.reconciled_at).toBe("2001-01-01T00:31:00.000Z");
    });
    await runCron("2001-01-01T00:32:00.000Z");
    expect(await runStartedAt("2001-01-01T00:31:00.000Z")).toMatchObject({ found: 1, refreshed: 0, fixed: 0 });
    expect((await runStartedAt("2001-01-01T00:32:00.000Z"))?.found).toBe(0);
    expect(await statusOf(merchantId, unknown.id)).toBe("pending");
  }, 30_000);

  /** `count` in-flight records Smart Router does not know, last changed a second apart from `from` on. */
  async function seedStale(merchantId: string, projectId: string, from: string, count: number) {
    const rows = Array.from({ length: count }, (_, i) =>
      transactionRow(merchantId, {
        id: `tr_stale${crypto.randomUUID().replaceAll("-", "")}`,
        projectId,
        status: i % 2 ? "authorized" : "pending",
        updatedAt: new Date(Date.parse(from) + i * 1000).toISOString(),
      }),
    );
    await seedTransactions(rows);
  }

  /** For each of the merchant's records, oldest change first: the run that last looked at it (null: none yet). */
  async function lookedAt(merchantId: string) {
    const { results } = await shardedDb
      .prepare("SELECT reconciled_at FROM transactions WHERE merchant_id = ? ORDER BY updated_at, id")
      .bind(merchantId)
      .all<{ reconciled_at: string | null }>();
    return results.map((row) => row.reconciled_at);
  }

  /** What the cron run at `at` found, on every shard together. */
  const foundBy = async (at: string) => {
    let found = 0;
    for (const shard of SHARDS) {
      const row = await shard
        .prepare("SELECT sum(found) AS n FROM reconciliation_runs WHERE started_at = ?")
        .bind(at)
        .first<{ n: number }>();
      found += row?.n ?? 0;
    }
    return found;
  };

  it("caps each merchant's share of a run, so another merchant's records are looked at in the same run, and cycles through all", async () => {
    const [busy, other] = [await openShop({ unlimited: true }), await openShop({ unlimited: true })];
    // 230 long-held authorizations and pending payments at one merchant, all older than the other merchant's 30.
    await seedStale(busy.merchant.merchant.id, busy.projectId, "2000-12-01T00:00:00.000Z", 230);
    await seedStale(other.merchant.merchant.id, other.projectId, "2000-12-01T01:00:00.000Z", 30);
    const [first, second, third, fourth] = [
      "2000-12-01T02:00:00.000Z",
      "2000-12-01T02:01:00.000Z",
      "2000-12-01T02:02:00.000Z",
      "2000-12-01T02:03:00.000Z",
    ] as const;

    await runCron(first);
    // At most 100 of the busy merchant's, its oldest; the other merchant is not left waiting behind them.
    expect(await foundBy(first)).toBe(130);
    expect(await lookedAt(busy.merchant.merchant.id)).toEqual([...Array(100).fill(first), ...Array(130).fill(null)]);
    expect(await lookedAt(other.merchant.merchant.id)).toEqual(Array(30).fill(first));

    // Marked as looked at when queued, not when the refresh is done: the next runs take the next ones at once.
    await runCron(second);
    await runCron(third);
    await runCron(fourth);
    expect([await foundBy(second), await foundBy(third), await foundBy(fourth)]).toEqual([100, 30, 0]);
    expect(await lookedAt(busy.merchant.merchant.id)).toEqual([
      ...Array(100).fill(first),
      ...Array(100).fill(second),
      ...Array(30).fill(third),
    ]);
    expect(await lookedAt(other.merchant.merchant.id)).toEqual(Array(30).fill(first));
  }, 30_000);

  it("looks at 500 records of a shard a run at most, least recently looked at first", async () => {
    // Six merchants of one shard (the cap is each shard's), each with 90 records (under the per-merchant cap), 540 in all;
    // merchant m's records start at hour m.
    const byShard = new Map<number, Shop[]>();
    let sameShard: Shop[] = [];
    // Ends once one shard holds six of them: registrations alternate between the two, so within a dozen.
    for (let opened = 0; opened < 14 && sameShard.length < 6; opened += 1) {
      const shop = await openShop({ unlimited: true });
      const shard = (await shardIndexOf(shop.merchant.merchant.id)) ?? 0;
      const group = [...(byShard.get(shard) ?? []), shop];
      byShard.set(shard, group);
      if (group.length === 6) sameShard = group;
    }
    expect(sameShard).toHaveLength(6);
    const merchantIds: string[] = [];
    for (const [m, shop] of sameShard.entries()) {
      await seedStale(shop.merchant.merchant.id, shop.projectId, `2000-11-01T0${m}:00:00.000Z`, 90);
      merchantIds.push(shop.merchant.merchant.id);
    }
    const [first, second] = ["2000-11-01T07:00:00.000Z", "2000-11-01T07:01:00.000Z"] as const;
    await runCron(first);
    await runCron(second);
    expect([await foundBy(first), await foundBy(second)]).toEqual([500, 40]);
    // The run took the 500 oldest: the newest merchant's last 40 records waited for the next one.
    const looked = await Promise.all(merchantIds.map(lookedAt));
    expect(looked).toEqual([...Array(5).fill(Array(90).fill(first)), [...Array(50).fill(first), ...Array(40).fill(second)]]);
  }, 30_000);
});
