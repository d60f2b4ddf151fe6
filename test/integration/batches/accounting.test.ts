import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../../src/index";
import { call } from "../../support/fixtures";
import { eventually, openShop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";

describe("batch accounting", () => {
  it("a unit that failed for good fails its batch instead of leaving it running", async () => {
    const shop = await openShop({ unlimited: true, webhooks: false });
    const payment = await shop.pay({ card: "4242424242424242", amount: "2.00", currency: "EUR" });
    // Smart Router is down: the unit waits (behind the breaker) and the batch stays open.
    await shop.settings({ chaos: { api_5xx_rate: 1 } });
    const headers = { authorization: `Bearer ${shop.merchant.api_key}`, "content-type": "application/json" };
    const created = await call("/v1/batches", {
      method: "POST",
      headers,
      body: JSON.stringify({ kind: "refresh", transaction_ids: [payment.id] }),
    });
    const { batch } = (await created.json()) as { batch: { id: string } };
    const unit = {
      v: 1,
      kind: "refresh",
      unit_id: `${batch.id}/0`,
      batch_id: batch.id,
      run_id: null,
      merchant_id: shop.merchant.merchant.id,
      transaction_ids: [payment.id],
    };
    // The queue gives the unit up (its retries spent by crashes): the dead-letter consumer fails the batch, saying why.
    const letters = createMessageBatch("smart-router-batches-dlq", [
      { id: `dlq-${crypto.randomUUID()}`, timestamp: new Date(), attempts: 3, body: unit },
    ]);
    const ctx = createExecutionContext();
    await worker.queue?.(letters as MessageBatch<unknown>, env, ctx);
    expect((await getQueueResult(letters, ctx)).explicitAcks).toHaveLength(1);
    const failed = await eventually(async () => {
      const response = await call(`/v1/batches/${batch.id}`, { headers });
      const body = (await response.json()) as { batch: { status: string; error?: string; finished_at: string | null } };
      expect(body.batch.status).toBe("failed");
      return body.batch;
    });
    expect(failed.error).toMatch(/failed for good/);
    expect(failed.finished_at).not.toBeNull();
    await shop.settings({ chaos: { api_5xx_rate: 0 } });
  });

  it("completes in the same commit as the last unit's counters", async () => {
    const shop = await openShop({ unlimited: true, webhooks: false });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await shop.pay({ card: "4242424242424242", amount: "2.00", currency: "EUR" })).id);
    const headers = { authorization: `Bearer ${shop.merchant.api_key}`, "content-type": "application/json" };
    const created = await call("/v1/batches", { method: "POST", headers, body: JSON.stringify({ kind: "refresh", transaction_ids: ids }) });
    const { batch } = (await created.json()) as { batch: { id: string } };
    // Every reading of the batch sees counters and status agree: never `completed` short of its total, never done and running.
    await eventually(
      async () => {
        const row = await shardedDb
          .prepare("SELECT status, total, done, failed, outstanding FROM batches WHERE id = ?")
          .bind(batch.id)
          .first<Record<string, unknown>>();
        if (row?.status === "completed") expect(row).toMatchObject({ total: 3, done: 3, failed: 0, outstanding: 0 });
        else expect(row?.outstanding).toBeGreaterThan(0);
        expect(row?.status).toBe("completed");
      },
      { timeoutMs: 25_000, intervalMs: 50 },
    );
  }, 40_000);
});
