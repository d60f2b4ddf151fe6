import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../../src/app";
import { MAX_OPEN_BATCHES, MAX_SYNC_RANGE_DAYS } from "../../../src/batches/batches";
import { type CreatedMerchant, createMerchant } from "../../support/fixtures";
import { shardedDb } from "../../support/shards";

type Answer = { batch?: { id: string; status: string }; error?: { code: string; message: string; request_id: string } };

const metrics = { backlogCount: 0, backlogBytes: 0 };
/** A BATCHES binding that takes the work and delivers none of it: the merchant's batches stay queued, open. */
const holdingQueue: Queue = {
  metrics: async () => metrics,
  send: async () => ({ metadata: { metrics } }),
  sendBatch: async () => ({ metadata: { metrics } }),
};

const app = createApp();
function post(merchant: CreatedMerchant, body: unknown) {
  const request = new Request("https://edge.test/v1/batches", {
    method: "POST",
    headers: { authorization: `Bearer ${merchant.api_key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return app.fetch(request, { ...env, BATCHES: holdingQueue });
}

async function startBatch(merchant: CreatedMerchant, body: unknown = { kind: "refresh", transaction_ids: ["tr_open1"] }) {
  const response = await post(merchant, body);
  return { status: response.status, answer: (await response.json()) as Answer };
}

/** Starts `count` batches, each answered 202; their ids. */
async function openBatches(merchant: CreatedMerchant, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const body =
      i % 2 === 0
        ? { kind: "refresh", transaction_ids: [`tr_open${i}`] }
        : { kind: "sync", created_after: "2026-01-01T00:00:00Z", created_before: "2026-01-15T00:00:00Z" };
    const { status, answer } = await startBatch(merchant, body);
    expect(status, JSON.stringify(answer)).toBe(202);
    if (answer.batch) ids.push(answer.batch.id);
  }
  return ids;
}

const openCount = async (merchantId: string) =>
  (
    await shardedDb
      .prepare("SELECT count(*) AS n FROM batches WHERE merchant_id = ? AND status IN ('queued', 'running')")
      .bind(merchantId)
      .first<{ n: number }>()
  )?.n ?? 0;

const sync = (after: string, before: string) => ({ kind: "sync", created_after: after, created_before: before });

describe("batches: at most 5 open per merchant", () => {
  it("takes 5 open batches, refuses a 6th with 409 conflict naming the 5, and takes one again once a place frees", async () => {
    const merchant = await createMerchant();
    const ids = await openBatches(merchant, MAX_OPEN_BATCHES);

    const refused = await startBatch(merchant);
    expect(refused.status).toBe(409);
    expect(refused.answer.error?.code).toBe("conflict");
    expect(refused.answer.error?.request_id).toEqual(expect.any(String));
    for (const id of ids) expect(refused.answer.error?.message).toContain(id);
    expect(Object.keys(refused.answer.error ?? {}).sort()).toEqual(["code", "message", "request_id"]);
    expect(await openCount(merchant.merchant.id)).toBe(MAX_OPEN_BATCHES);

    // Cancelling one frees its place.
    const cancelled = await app.fetch(
      new Request(`https://edge.test/v1/batches/${ids[0]}`, { method: "DELETE", headers: { authorization: `Bearer ${merchant.api_key}` } }),
      env,
    );
    expect(cancelled.status).toBe(200);
    expect((await startBatch(merchant)).status).toBe(202);

    // A finished batch holds no place either; a running one does.
    await shardedDb.prepare("UPDATE batches SET status = 'completed' WHERE id = ?").bind(ids[1]).run();
    await shardedDb.prepare("UPDATE batches SET status = 'running' WHERE id = ?").bind(ids[2]).run();
    expect((await startBatch(merchant)).status).toBe(202);
    const full = await startBatch(merchant);
    expect(full.status).toBe(409);
    expect(full.answer.error?.message).toContain(ids[2]);
    expect(full.answer.error?.message).not.toContain(ids[1]);
  });

  it("lets exactly one of two concurrent POSTs at 4 open through", async () => {
    const merchant = await createMerchant();
    await openBatches(merchant, MAX_OPEN_BATCHES - 1);
    const answers = await Promise.all([startBatch(merchant), startBatch(merchant, sync("2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z"))]);
    expect(answers.map((answer) => answer.status).sort()).toEqual([202, 409]);
    expect(await openCount(merchant.merchant.id)).toBe(MAX_OPEN_BATCHES);
  });

  it("never counts another merchant's batches, nor names them", async () => {
    const [busy, other] = [await createMerchant(), await createMerchant()];
    const busyIds = await openBatches(busy, MAX_OPEN_BATCHES);
    expect((await startBatch(busy)).status).toBe(409);

    const [otherId] = await openBatches(other, 1);
    const full = await openBatches(other, MAX_OPEN_BATCHES - 1);
    const refused = await startBatch(other);
    expect(refused.status).toBe(409);
    for (const id of [otherId, ...full]) expect(refused.answer.error?.message).toContain(id);
    for (const id of busyIds) expect(refused.answer.error?.message).not.toContain(id);
  });
});

describe("batches: a sync covers at most 31 days", () => {
  it(`takes a range of exactly ${MAX_SYNC_RANGE_DAYS} days`, async () => {
    const merchant = await createMerchant();
    expect((await startBatch(merchant, sync("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"))).status).toBe(202);
    // Offsets count by instant: 31 days exactly, though the strings say 1 January 00:00 and 1 February 02:00.
    expect((await startBatch(merchant, sync("2026-01-01T00:00:00Z", "2026-02-01T02:00:00+02:00"))).status).toBe(202);
  });

  it.each([
    ["a millisecond past 31 days", sync("2026-01-01T00:00:00Z", "2026-02-01T00:00:00.001Z")],
    ["a year", sync("2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z")],
    ["31 days by the strings, more by instant", sync("2026-01-01T00:00:00+01:00", "2026-02-01T00:00:00Z")],
  ])("400 invalid_body for %s, naming the bound, and nothing created", async (_name, body) => {
    const merchant = await createMerchant();
    const { status, answer } = await startBatch(merchant, body);
    expect(status).toBe(400);
    expect(answer.error?.code).toBe("invalid_body");
    expect(answer.error?.message).toContain(`at most ${MAX_SYNC_RANGE_DAYS} days`);
    expect(await openCount(merchant.merchant.id)).toBe(0);
  });
});
