import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { appConfig } from "../../../src/env";
import { MOVE_PAGE } from "../../../src/moves/copy";
import { runMoveStep } from "../../../src/moves/moves";
import { ADMIN, call } from "../../support/fixtures";
import { seedBulkTransactions } from "../../support/moves";
import { eventually, openShop } from "../../support/sandbox";
import { SHARDS, shardIndexOf } from "../../support/shards";

/** More transactions than a cleaning pass deletes: `npm run soak -- --move` found the merchant with 798 at its start. */
const SEEDED = MOVE_PAGE + 100;

const countOf = async (db: D1Database, query: string, merchantId: string) =>
  (await db.prepare(query).bind(merchantId).first<{ n: number }>())?.n ?? 0;

describe("moving a merchant between shards: cleaning (happy)", () => {
  it("cleans a source holding more than a page of transactions without a failed step, the merchants row last", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const from = await shardIndexOf(merchantId);
    if (from === undefined) throw new Error("merchant in no shard");
    const source = SHARDS[from] ?? env.DB;
    await seedBulkTransactions(source, merchantId, SEEDED);
    // A move past its switch, its wait before cleaning over: the next step deletes the first page of every table.
    const moveId = `mov_cleaning${crypto.randomUUID().replaceAll("-", "")}`;
    const long = "2000-01-01T00:00:00.000Z";
    await env.DB.prepare(
      `INSERT INTO merchant_moves (id, merchant_id, from_shard, to_shard, status, step, started_at, switched_at, updated_at)
       VALUES (?1, ?2, ?3, ?4, 'cleaning', 7, ?5, ?5, ?5)`,
    )
      .bind(moveId, merchantId, from, 1 - from, long)
      .run();

    // Before the fix the first pass deleted the merchants row while 100 transactions still named it: FOREIGN KEY failed.
    const step = {
      env,
      config: appConfig(env),
      queue: env.BATCHES,
      message: { v: 1, kind: "merchant_move", move_id: moveId, step: 7, shard: 0 },
    } as const;
    await expect(runMoveStep({ ...step, attempts: 1 })).resolves.toBeUndefined();
    expect(await countOf(source, "SELECT count(*) AS n FROM transactions WHERE merchant_id = ?", merchantId)).toBe(SEEDED - MOVE_PAGE);
    expect(await countOf(source, "SELECT count(*) AS n FROM merchants WHERE id = ?", merchantId)).toBe(1);

    // The batch queue takes the next steps: the rest goes, the merchants row in a pass of its own, then the move completes.
    await eventually(
      async () => {
        const response = await call(`/admin/moves/${moveId}`, { headers: ADMIN });
        expect(((await response.json()) as { move: { status: string } }).move.status).toBe("completed");
      },
      { timeoutMs: 30_000 },
    );
    expect(await countOf(source, "SELECT count(*) AS n FROM transactions WHERE merchant_id = ?", merchantId)).toBe(0);
    expect(await countOf(source, "SELECT count(*) AS n FROM merchants WHERE id = ?", merchantId)).toBe(0);
    expect(await countOf(source, "SELECT count(*) AS n FROM api_keys WHERE merchant_id = ?", merchantId)).toBe(0);
  });
});
