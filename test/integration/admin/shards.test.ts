import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { appConfig } from "../../../src/env";
import { startMove } from "../../../src/moves/moves";
import { ADMIN, type CreatedMerchant, call, createMerchant } from "../../support/fixtures";
import { driveMove, stepQueue } from "../../support/moves";
import { shardIndexOf } from "../../support/shards";

/** Issue 21, item 1: `GET /admin/shards` and the shard of `GET /admin/merchants/{id}` (contract, "Shards: watch and move"). */

interface ShardEntry {
  binding: string;
  index: number;
  ok: boolean;
  merchants: number | null;
  bytes: number | null;
  capacity_bytes: number;
  used: number | null;
  migration: string | null;
  error?: string;
}

/** The newest migration the test setup applied to every shard (test/support/apply-migrations.ts). */
const NEWEST_MIGRATION = env.TEST_MIGRATIONS.at(-1)?.name;

async function shards(): Promise<{ status: number; shards: ShardEntry[] }> {
  const response = await call("/admin/shards", { headers: ADMIN });
  const body = (await response.json()) as { shards: ShardEntry[] };
  return { status: response.status, shards: body.shards };
}

/**
 * Merchants on shard 0 and shard 1. Placement goes by free bytes, so while one shard is much emptier every registration
 * lands there: after a few (horizon: 6) the last one is moved to the other shard instead.
 */
async function merchantsOnBothShards(): Promise<Map<number, CreatedMerchant & { movedFrom?: string }>> {
  const byShard = new Map<number, CreatedMerchant & { movedFrom?: string }>();
  for (let attempt = 0; attempt < 6 && byShard.size < 2; attempt += 1) {
    const merchant = await createMerchant();
    const index = await shardIndexOf(merchant.merchant.id);
    if (index !== undefined && !byShard.has(index)) byShard.set(index, merchant);
  }
  if (byShard.size === 1) {
    const to = byShard.has(0) ? 1 : 0;
    const moved = await createMerchant();
    const registeredOn = (moved.merchant as { shard?: string }).shard;
    if ((await shardIndexOf(moved.merchant.id)) !== to) {
      const binding = to === 0 ? "DB" : `DB_SHARD_${to}`;
      const move = await startMove({ env, config: appConfig(env), queue: stepQueue().queue, merchantId: moved.merchant.id, to: binding });
      await driveMove({ moveId: move.id });
      if ((await shardIndexOf(moved.merchant.id)) === to) byShard.set(to, { ...moved, movedFrom: registeredOn });
    } else byShard.set(to, moved);
  }
  if (byShard.size < 2) throw new Error("registrations did not reach both shards");
  return byShard;
}

describe("admin API: shards", () => {
  it("needs the admin token", async () => {
    expect((await call("/admin/shards")).status).toBe(401);
    expect((await call("/admin/shards", { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
  });

  it("lists every bound shard in order, with its merchants, size and last migration", async () => {
    await merchantsOnBothShards();
    // Each count is the shard's own merchants table, less merchants a move marks as not placed there (receiving a copy,
    // or moved away and not cleaned yet). Other test files register and move merchants meanwhile: the answer is taken
    // again until both counts stayed the same around it (horizon: 10 answers).
    const placed = async (db: D1Database) =>
      (
        await db
          .prepare(
            "SELECT count(*) AS n FROM merchants AS m WHERE NOT EXISTS (SELECT 1 FROM move_marks AS k WHERE k.merchant_id = m.id AND k.state IN ('receiving', 'moved'))",
          )
          .first<{ n: number }>()
      )?.n;
    let answer = await shards();
    let counts: (number | undefined)[] = [];
    for (let read = 0; read < 10; read++) {
      const before = [await placed(env.DB), await placed(env.DB_SHARD_1)];
      answer = await shards();
      counts = [await placed(env.DB), await placed(env.DB_SHARD_1)];
      if (counts.every((n, i) => n === before[i])) break;
    }
    expect(answer.status).toBe(200);
    expect(answer.shards.map((shard) => [shard.binding, shard.index])).toEqual([
      ["DB", 0],
      ["DB_SHARD_1", 1],
    ]);
    for (const shard of answer.shards) {
      expect(shard).toMatchObject({ ok: true, capacity_bytes: 10_000_000_000 });
      expect(shard.error).toBeUndefined();
      expect(shard.merchants).toBeGreaterThanOrEqual(1);
      expect(shard.bytes).toBeGreaterThan(0);
      expect(shard.used).toBeGreaterThanOrEqual(0);
      expect(shard.used).toBeLessThan(1);
      expect(shard.used).toBe(Math.round(((shard.bytes ?? 0) / 10_000_000_000) * 10_000) / 10_000);
      expect(shard.migration).toMatch(/^\d{4}_/);
      expect(shard.migration).toBe(NEWEST_MIGRATION);
    }
    expect(answer.shards.map((shard) => shard.merchants)).toEqual(counts);
  });

  it("names a failing shard with ok:false and an error, and still answers for the others", async () => {
    await env.DB_SHARD_1.exec("ALTER TABLE merchants RENAME TO merchants_down");
    try {
      const answer = await shards();
      expect(answer.status).toBe(200);
      const [first, second] = answer.shards;
      expect(first).toMatchObject({ binding: "DB", ok: true });
      expect(first?.error).toBeUndefined();
      expect(second).toMatchObject({ binding: "DB_SHARD_1", index: 1, ok: false, merchants: null, migration: NEWEST_MIGRATION });
      expect(second?.error).toMatch(/merchants/);
      expect(second?.error).not.toMatch(/select|bearer|secret/i);
    } finally {
      await env.DB_SHARD_1.exec("ALTER TABLE merchants_down RENAME TO merchants");
    }
    expect((await shards()).shards.every((shard) => shard.ok)).toBe(true);
  });

  it("names each merchant's shard binding on GET /admin/merchants/{id} and at registration", async () => {
    const byShard = await merchantsOnBothShards();
    for (const [index, created] of byShard) {
      const binding = index === 0 ? "DB" : `DB_SHARD_${index}`;
      const response = await call(`/admin/merchants/${created.merchant.id}`, { headers: ADMIN });
      expect(response.status).toBe(200);
      expect(((await response.json()) as { merchant: { shard: string } }).merchant.shard).toBe(binding);
      // At registration: where it was placed (a merchant moved here by merchantsOnBothShards was placed on the other).
      expect((created.merchant as { shard?: string }).shard).toBe(created.movedFrom ?? binding);
      if (created.movedFrom) expect(created.movedFrom).not.toBe(binding);
    }
  });
});
