import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { appConfig } from "../../../src/env";
import { startMove } from "../../../src/moves/moves";
import { createMerchant } from "../../support/fixtures";
import { legacyRows, NO_LEGACY_ROWS, run0035 } from "../../support/legacy-histories";
import { driveMove, jobOf, shardDb, stepQueue } from "../../support/moves";
import { shardIndexOf } from "../../support/shards";
import { seedEvent, seedOperation, seedTransaction } from "../../support/status-api";
import { archiveAll, historyAnswers, ledger, namesOf, rowsInD1 } from "../retention/support";

// A moved merchant's archived history still reads back: its records carry the objects' names (0034), the same on
// every shard. `archived_histories` is no longer moved (0035 merged its rows into the names; the next release drops it).

const bindingOf = (index: number) => (index === 0 ? "DB" : `DB_SHARD_${index}`);
const ms = (base: string, offset: number) => new Date(Date.parse(base) + offset).toISOString();

/** A merchant with two completed transactions, their histories archived to R2. */
async function archivedMerchant() {
  const merchant = await createMerchant();
  const merchantId = merchant.merchant.id;
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const transaction = await seedTransaction(merchantId, { status: "completed", updatedAt: ms("2026-02-01T10:00:00.000Z", i * 1000) });
    await seedEvent({ merchantId, transactionId: transaction.id, firedAt: ms("2026-02-01T09:00:00.000Z", i * 1000) });
    for (let o = 0; o < 2; o++) {
      await seedOperation({ merchantId, transactionId: transaction.id, createdAt: ms("2026-02-01T09:00:00.000Z", i * 1000 + o) });
    }
    ids.push(transaction.id);
  }
  const answers = async () => Promise.all(ids.map((id) => historyAnswers(merchant.api_key, id)));
  const before = await answers();
  await archiveAll(merchantId);
  expect(await rowsInD1(merchantId)).toEqual({ events: 0, operations: 0 });
  expect(await answers()).toEqual(before);
  const from = (await shardIndexOf(merchantId)) ?? 0;
  return { merchantId, ids, answers, before, from };
}

/** Moves the merchant to the other shard, step by step, to its end. */
async function moveAway(merchantId: string, from: number) {
  const to = 1 - from;
  const move = await startMove({ env, config: appConfig(env), queue: stepQueue().queue, merchantId, to: bindingOf(to) });
  await driveMove({ moveId: move.id });
  expect((await jobOf(move.id)).status).toBe("completed");
  expect(await shardIndexOf(merchantId)).toBe(to);
  return to;
}

describe("a moved merchant's archived history (happy)", () => {
  // One move for both kinds of record: each move shifts where the next merchants are placed, which other files' shard-wide
  // figures (prune.test.ts) are sensitive to.
  it("reads back the same after the move: names carried as they were, a pre-0034 row merged into its record by 0035, not carried", async () => {
    const shop = await archivedMerchant();
    const [old, recent] = shop.ids;
    if (!old || !recent) throw new Error("no transactions");
    const keys = (await ledger(shop.merchantId)).map((object) => object.key);
    const names = await namesOf(shop.merchantId, recent);
    expect(names).toHaveLength(1);
    // `old` as the code before 0034 left it: a row of archived_histories naming the shard's archive id, no names.
    const source = shardDb(shop.from);
    await source.batch([
      source
        .prepare(
          `INSERT INTO archived_histories (merchant_id, transaction_id, archive_id)
           SELECT ?1, ?2, o.id FROM archive_objects AS o WHERE o.merchant_id = ?1 AND o.status = 'stored'`,
        )
        .bind(shop.merchantId, old),
      source.prepare("UPDATE transactions SET archive_names = NULL WHERE merchant_id = ? AND id = ?").bind(shop.merchantId, old),
    ]);
    await run0035(source);
    expect(await namesOf(shop.merchantId, old)).toEqual(
      keys.map((key) => key.slice(`history/${shop.merchantId}/`.length, -".ndjson.gz".length)),
    );
    expect(await shop.answers()).toEqual(shop.before);

    // A row 0035 could not merge (its record is gone): not copied, not counted, left on the source for the next release's DROP.
    await source
      .prepare(`INSERT INTO operations (merchant_id, id, transaction_id, type, amount, is_attempt, created_at)
        VALUES (?, 'op_orphan', 'tr_gone', 'capture', '1.00', 0, '2026-02-01T09:00:00.000Z')`)
      .bind(shop.merchantId)
      .run();
    const to = await moveAway(shop.merchantId, shop.from);
    expect((await legacyRows(source, shop.merchantId)).operations).toBe(1);
    expect(await namesOf(shop.merchantId, recent)).toEqual(names);
    expect(await namesOf(shop.merchantId, old)).toEqual(names);
    // The ledger moved too (new ids), under the same keys; the table is not carried (nothing of it is left to carry).
    expect((await ledger(shop.merchantId)).map((object) => object.key)).toEqual(keys);
    expect(await legacyRows(shardDb(to), shop.merchantId)).toEqual(NO_LEGACY_ROWS);
    expect(await shop.answers()).toEqual(shop.before);
  });
});
