import { describe, expect, it } from "vitest";
import { archiveMerchantHistory } from "../../../src/retention/archive";
import { createMerchant } from "../../support/fixtures";
import { dbOfMerchant, seedEvent, seedOperation, seedTransaction } from "../../support/status-api";
import {
  archiveAll,
  archivedRecords,
  expectUniqueIds,
  type Failure,
  FUTURE_CUTOFF,
  failingBucket,
  historyAnswers,
  ledger,
  rowsInD1,
} from "./support";

const ms = (base: string, offset: number) => new Date(Date.parse(base) + offset).toISOString();

/** A merchant with `count` completed transactions, each with 3 applied events and 4 operations. */
async function merchantWithHistories(count: number) {
  const merchant = await createMerchant();
  const merchantId = merchant.merchant.id;
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const transaction = await seedTransaction(merchantId, { status: "completed", updatedAt: ms("2026-02-01T10:00:00.000Z", i * 1000) });
    for (let e = 0; e < 3; e++) {
      await seedEvent({ merchantId, transactionId: transaction.id, firedAt: ms("2026-02-01T09:00:00.000Z", i * 1000 + e) });
    }
    for (let o = 0; o < 4; o++) {
      await seedOperation({ merchantId, transactionId: transaction.id, createdAt: ms("2026-02-01T09:00:00.000Z", i * 1000 + o) });
    }
    ids.push(transaction.id);
  }
  const answers = async () => Promise.all(ids.map((id) => historyAnswers(merchant.api_key, id)));
  return { merchant, merchantId, ids, answers, before: await answers() };
}

const step = async (merchantId: string, bucket = failingBucket("put refused", () => false)) =>
  archiveMerchantHistory({ db: await dbOfMerchant(merchantId), bucket, merchantId, cutoff: FUTURE_CUTOFF, now: Date.now() });

/** After a finished archive: nothing in D1, every record once in R2, every answer as before. */
async function expectArchivedOnce(shop: Awaited<ReturnType<typeof merchantWithHistories>>) {
  expect(await rowsInD1(shop.merchantId)).toEqual({ events: 0, operations: 0 });
  const records = (await archivedRecords(shop.merchantId)).flatMap((object) => object.records);
  expect(records.length).toBe(shop.ids.length * 7);
  expectUniqueIds(records.filter((record) => record.record === "event"));
  expectUniqueIds(records.filter((record) => record.record === "operation"));
  expect(await shop.answers()).toEqual(shop.before);
  expect((await ledger(shop.merchantId)).every((object) => object.status === "stored")).toBe(true);
}

describe("retention: an interrupted archive run loses nothing and duplicates nothing", () => {
  for (const failure of ["put refused", "dies after put", "head fails"] as const satisfies Failure[]) {
    it(`${failure}: the rows stay in D1 and the answers stay whole; the next run finishes the same object`, async () => {
      const shop = await merchantWithHistories(3);
      await expect(step(shop.merchantId, failingBucket(failure))).rejects.toThrow(/injected/);

      // Claimed, not stored: every row is still in D1, and the status API still answers from there alone.
      expect(await rowsInD1(shop.merchantId)).toEqual({ events: 9, operations: 12 });
      expect(await ledger(shop.merchantId)).toMatchObject([{ status: "writing" }]);
      expect(await shop.answers()).toEqual(shop.before);

      // A second failure changes nothing either; then a run that works resumes the claimed object under its key.
      await expect(step(shop.merchantId, failingBucket(failure))).rejects.toThrow(/injected/);
      const [claimed] = await ledger(shop.merchantId);
      expect(await step(shop.merchantId)).toMatchObject({ kind: "stored", key: claimed?.key, transactions: 3, records: 21 });
      expect(await step(shop.merchantId)).toEqual({ kind: "idle" });
      expect((await archivedRecords(shop.merchantId)).map((object) => object.key)).toEqual([claimed?.key]);
      await expectArchivedOnce(shop);
    });
  }

  it("rows that arrive after the claim stay in D1 and are answered once", async () => {
    const shop = await merchantWithHistories(2);
    await expect(step(shop.merchantId, failingBucket("put refused"))).rejects.toThrow(/injected/);
    const [first] = shop.ids;
    if (!first) throw new Error("no transaction");
    const late = await seedEvent({ merchantId: shop.merchantId, transactionId: first, firedAt: "2026-02-01T09:59:00.000Z" });
    expect(await step(shop.merchantId)).toMatchObject({ kind: "stored", records: 14 });
    expect(await rowsInD1(shop.merchantId)).toEqual({ events: 1, operations: 0 });
    const events = (await historyAnswers(shop.merchant.api_key, first)).events.events;
    expect(events.map((event) => event.id)).toEqual([...(shop.before[0]?.events.events ?? []).map((event) => event.id), late.id]);
  });

  it("two runs at once: one claims and stores, the other stands aside or finishes the same object", async () => {
    const shop = await merchantWithHistories(4);
    const steps = await Promise.all([step(shop.merchantId), step(shop.merchantId), step(shop.merchantId)]);
    expect(steps.filter((s) => s.kind === "stored").length).toBeGreaterThanOrEqual(1);
    await archiveAll(shop.merchantId);
    expect((await ledger(shop.merchantId)).length).toBe(1);
    await expectArchivedOnce(shop);
  });

  it("a run that stops after its put and one that resumes at once overlap without harm", async () => {
    const shop = await merchantWithHistories(2);
    let failing = true;
    const dying = failingBucket("dies after put", () => failing);
    await expect(step(shop.merchantId, dying)).rejects.toThrow(/injected/);
    failing = false;
    const [a, b] = await Promise.all([step(shop.merchantId, dying), step(shop.merchantId)]);
    expect([a?.kind, b?.kind].sort()).toEqual(expect.arrayContaining(["stored"]));
    await expectArchivedOnce(shop);
  });
});
