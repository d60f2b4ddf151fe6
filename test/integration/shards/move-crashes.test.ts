import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { appConfig } from "../../../src/env";
import { startMove } from "../../../src/moves/moves";
import { consume, deliveryOf } from "../../support/consumer";
import {
  CRASHES,
  type Crash,
  countsOn,
  driveMove,
  jobOf,
  rowsOn,
  STEP_KINDS,
  type StepKind,
  shardDb,
  statusOf,
  stepQueue,
} from "../../support/moves";
import { eventually, openShop, type Shop } from "../../support/sandbox";
import { shardIndexOf } from "../../support/shards";

const bindingOf = (index: number) => (index === 0 ? "DB" : `DB_SHARD_${index}`);

/** A merchant with three card payments (two captured and fulfilled, one declined), all applied and settled. */
async function settledShop(): Promise<Shop> {
  const shop = await openShop({ unlimited: true, fulfillment: true });
  for (const card of ["4242424242424242", "4000000000000002", "4242424242424242"])
    await shop.pay({ card, amount: "12.00", currency: "EUR" });
  await shop.relay();
  const merchantId = shop.merchant.merchant.id;
  await eventually(async () => {
    const rows = await shardDb((await shardIndexOf(merchantId)) ?? 0)
      .prepare("SELECT status FROM fulfillments WHERE merchant_id = ?")
      .bind(merchantId)
      .all<{ status: string }>();
    expect(rows.results.map((row) => row.status)).toEqual(["delivered", "delivered"]);
  });
  return shop;
}

/** 600 writes of the merchant's row on its shard: more than a change-log page, so the catch-up takes a step of its own. */
async function churn(db: D1Database, merchantId: string) {
  const statements = Array.from({ length: 600 }, (_, i) =>
    db.prepare("UPDATE merchants SET name = ? WHERE id = ?").bind(`Renamed ${i + 1}`, merchantId),
  );
  await db.batch(statements);
}

/** The status API's list equals Smart Router's truth; one fulfilment row per captured payment, on the merchant's shard. */
async function expectTruth(shop: Shop, shard: number) {
  await shop.relay();
  const truth = await shop.truth();
  await eventually(async () => expect((await statusOf(shop)).sort()).toEqual(truth.transactions.map((t) => `${t.id}:${t.status}`).sort()));
  const merchantId = shop.merchant.merchant.id;
  const fulfilments = await shardDb(shard)
    .prepare("SELECT transaction_id, count(*) AS n FROM fulfillments WHERE merchant_id = ? GROUP BY transaction_id")
    .bind(merchantId)
    .all<{ transaction_id: string; n: number }>();
  const captured = truth.transactions.filter((t) => Number(t.captured_amount) > 0).map((t) => t.id);
  expect(fulfilments.results.map((row) => row.transaction_id).sort()).toEqual(captured.sort());
  expect(fulfilments.results.every((row) => row.n === 1)).toBe(true);
}

/**
 * Moves the shop's merchant to the other shard, crashing each step of `kind` as `crash` says, with traffic while it
 * copies (600 writes of its row, and a new payment's webhooks consumed); checks the move ends with the target's rows
 * equal to the source's under the fence, the source empty, and the status API equal to the emulator's truth.
 */
async function moveWithCrashes(shop: Shop, kind: StepKind, crash: Crash) {
  const merchantId = shop.merchant.merchant.id;
  const from = (await shardIndexOf(merchantId)) ?? 0;
  const to = 1 - from;
  const before = await countsOn(shardDb(from), merchantId);
  const declined = await shop.pay({ card: "4000000000000002", amount: "7.00", currency: "EUR" });
  const events = (await shop.truth()).events.filter((e) => e.transaction_id === declined.id);
  const move = await startMove({ env, config: appConfig(env), queue: stepQueue().queue, merchantId, to: bindingOf(to) });
  let fenced: Record<string, string[]> | undefined;
  const crashed = await driveMove({
    moveId: move.id,
    crashAt: kind,
    crash,
    before: async (next, n) => {
      if (n === 2) await churn(shardDb(from), merchantId);
      if (n === 5) expect((await consume(events.map((e) => deliveryOf(merchantId, e)))).retryMessages).toEqual([]);
      // Under the fence the source's rows are final: the target must end equal to them.
      if (next === "switch" && !fenced) fenced = await rowsOn(shardDb(from), merchantId);
    },
  });
  expect(crashed.length, `${kind} steps crashed`).toBeGreaterThan(0);
  const job = await jobOf(move.id);
  expect(job).toMatchObject({ status: "completed", error: null });
  expect(job.rows_copied).toBeGreaterThan(0);
  expect(await shardIndexOf(merchantId)).toBe(to);
  expect(Object.values(await countsOn(shardDb(from), merchantId)).every((n) => n === 0)).toBe(true);
  expect(await rowsOn(shardDb(to), merchantId)).toEqual(fenced);
  const after = await countsOn(shardDb(to), merchantId);
  for (const [table, n] of Object.entries(before)) expect(after[table], table).toBeGreaterThanOrEqual(n);
  expect((await rowsOn(shardDb(to), merchantId)).merchants?.[0]).toContain("Renamed 600");
  await expectTruth(shop, to);
}

describe("a move crashed at every step resumes (happy)", () => {
  it.each(STEP_KINDS)(
    "each %s step crashed before its compare-and-set, after it (next message lost), and run twice at once: the move completes with equal rows",
    async (kind) => {
      const shop = await settledShop();
      // One move per crash, there and back: the second and third go back to a shard the merchant left.
      for (const crash of CRASHES) await moveWithCrashes(shop, kind, crash);
    },
    120_000,
  );
});
