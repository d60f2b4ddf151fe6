import { createExecutionContext, createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { openDatabase } from "../../src/db/client";
import { resendStalledFulfillments } from "../../src/fulfillment/sweep";
import worker from "../../src/index";
import { runScheduledWork } from "../../src/scheduled";
import { createMerchant } from "../support/fixtures";
import { eventually, openShop } from "../support/sandbox";
import { dbFor, shardedDb } from "../support/shards";
import { seedFulfillment, seedTransaction } from "../support/status-api";

/**
 * The test files share one D1 database and every cron run looks at every merchant's rows, so these runs are dated 1990,
 * before anything any test stores: their reconciliation finds nothing, and their sweep only the rows seeded here, which
 * each test settles when it is done so that no other test's sweep resends them.
 */
const merchantsSeeded: string[] = [];
afterEach(async () => {
  // Ends with the last merchant the test seeded (the list is emptied as it goes).
  for (const merchantId of merchantsSeeded.splice(0)) {
    await shardedDb
      .prepare("UPDATE fulfillments SET status = 'delivered' WHERE merchant_id = ? AND status = 'pending'")
      .bind(merchantId)
      .run();
  }
});

/** A queue binding that keeps what it is given and delivers nothing: a nudge sent to it is as good as lost. */
function recordingQueue() {
  const sent: { merchant_id: string; transaction_id: string }[] = [];
  const metrics = { backlogCount: 0, backlogBytes: 0 };
  const queue: Queue = {
    metrics: async () => metrics,
    send: async (body) => {
      sent.push(body as (typeof sent)[number]);
      return { metadata: { metrics } };
    },
    sendBatch: async (messages) => {
      // Ends with the batch's last message.
      for (const message of messages) sent.push(message.body as (typeof sent)[number]);
      return { metadata: { metrics } };
    },
  };
  return { queue, sent };
}

/** A queue binding that refuses every message, as Cloudflare Queues does when it is unavailable. */
const refusingQueue: Queue = {
  metrics: () => Promise.reject(new Error("Queue unavailable")),
  send: () => Promise.reject(new Error("Queue send failed: service unavailable")),
  sendBatch: () => Promise.reject(new Error("Queue send failed: service unavailable")),
};

/** `count` fulfilment rows whose nudge was lost (pending, never attempted), requested a minute apart from `from` on. */
async function seedStalled(merchantId: string, from: string, count: number) {
  merchantsSeeded.push(merchantId);
  const ids: string[] = [];
  // `count` rows, inserted newest first so that the order they come back in is the query's, not the insertion's.
  for (let i = count - 1; i >= 0; i--) {
    const transactionId = `tr_nudge${crypto.randomUUID().replaceAll("-", "")}`;
    await seedFulfillment({ merchantId, transactionId, requestedAt: new Date(Date.parse(from) + i * 60_000).toISOString() });
    ids.unshift(transactionId);
  }
  return ids;
}

const at = (iso: string) => Date.parse(iso);
const reconciliationRunAt = (iso: string) =>
  shardedDb.prepare("SELECT found FROM reconciliation_runs WHERE started_at = ?").bind(iso).first<{ found: number }>();

describe("fulfilment sweep", () => {
  it("resends the oldest lost nudges first, the next ones on the next run, and a nudge lost again some runs later", async () => {
    const { merchant } = await createMerchant();
    const stalled = await seedStalled(merchant.id, "1990-01-01T00:00:00.000Z", 120);
    // Not lost: attempted already (the queue retries it), requested a moment ago, or delivered.
    await seedFulfillment({ merchantId: merchant.id, transactionId: "tr_attempted", requestedAt: "1990-01-01T00:00:00.000Z", attempts: 1 });
    await seedFulfillment({ merchantId: merchant.id, transactionId: "tr_recent", requestedAt: "1990-01-01T03:14:00.000Z" });
    await seedFulfillment({
      merchantId: merchant.id,
      transactionId: "tr_delivered",
      requestedAt: "1990-01-01T00:00:00.000Z",
      status: "delivered",
    });
    const { queue, sent } = recordingQueue();
    const sweep = async (iso: string) => {
      sent.length = 0;
      await resendStalledFulfillments({ env: { ...env, FULFILLMENTS: queue }, db: openDatabase(await dbFor(merchant.id)), now: at(iso) });
      return sent.map((nudge) => nudge.transaction_id).sort();
    };

    expect(await sweep("1990-01-01T03:00:00.000Z")).toEqual(stalled.slice(0, 100).sort());
    // Five minutes later the first hundred are not resent again: the next twenty are.
    expect(await sweep("1990-01-01T03:05:00.000Z")).toEqual(stalled.slice(100).sort());
    expect(await sweep("1990-01-01T03:09:00.000Z")).toEqual([]);
    // None of them was ever attempted, so their nudges were lost again: resent once ten minutes have passed.
    expect(await sweep("1990-01-01T03:10:01.000Z")).toEqual(stalled.slice(0, 100).sort());
    expect(await sweep("1990-01-01T03:15:01.000Z")).toEqual(stalled.slice(100).sort());
    expect(sent.every((nudge) => nudge.merchant_id === merchant.id)).toBe(true);
  });

  it("delivers a resent nudge: the mark it leaves does not hold the consumer off", async () => {
    const shop = await openShop({ unlimited: true, fulfillment: true });
    const merchantId = shop.merchant.merchant.id;
    const transaction = await seedTransaction(merchantId, { status: "completed", capturedAmount: "10.50" });
    merchantsSeeded.push(merchantId);
    await seedFulfillment({ merchantId, transactionId: transaction.id, requestedAt: "1990-02-01T00:00:00.000Z" });
    expect(await resendStalledFulfillments({ env, db: openDatabase(await dbFor(merchantId)), now: at("1990-02-01T00:10:00.000Z") })).toBe(
      1,
    );
    await eventually(async () => {
      const row = await shardedDb
        .prepare("SELECT status, attempts FROM fulfillments WHERE merchant_id = ? AND transaction_id = ?")
        .bind(merchantId, transaction.id)
        .first<{ status: string; attempts: number }>();
      expect(row).toEqual({ status: "delivered", attempts: 1 });
    });
  });
});

describe("scheduled work", () => {
  it("still reconciles when the sweep fails, and the handler fails the run", async () => {
    const { merchant } = await createMerchant();
    await seedStalled(merchant.id, "1990-03-01T00:00:00.000Z", 1);
    const when = "1990-03-01T01:00:00.000Z";
    const controller = createScheduledController({ scheduledTime: at(when), cron: "*/5 * * * *" });
    const errors = vi.spyOn(console, "error");
    try {
      // Awaited by the handler itself, not left to waitUntil: the Cron Trigger sees the failure.
      await expect(worker.scheduled(controller, { ...env, FULFILLMENTS: refusingQueue }, createExecutionContext())).rejects.toThrow(
        "scheduled work failed: fulfillment_sweep",
      );
      expect(await reconciliationRunAt(when)).toEqual({ found: 0 });
      const lines = errors.mock.calls.map(([line]) => JSON.parse(String(line)));
      expect(lines).toContainEqual(
        expect.objectContaining({ level: "error", message: "scheduled.step_failed", step: "fulfillment_sweep" }),
      );
    } finally {
      errors.mockRestore();
    }
  });

  it("still sweeps when reconciliation fails on a misconfigured RECONCILE_AFTER_MINUTES, and fails the run", async () => {
    const { merchant } = await createMerchant();
    const [lost] = await seedStalled(merchant.id, "1990-04-01T00:00:00.000Z", 1);
    const { queue, sent } = recordingQueue();
    const misconfigured = { ...env, FULFILLMENTS: queue, RECONCILE_AFTER_MINUTES: "-5" };
    const when = "1990-04-01T01:00:00.000Z";
    const failure = await runScheduledWork(misconfigured, at(when)).then(
      () => null,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(AggregateError);
    expect((failure as AggregateError).message).toBe("scheduled work failed: reconciliation");
    expect(String((failure as AggregateError).errors[0])).toMatch(/RECONCILE_AFTER_MINUTES/);
    expect(sent.map((nudge) => nudge.transaction_id)).toEqual([lost]);
    expect(await reconciliationRunAt(when)).toBeNull();
  });

  it("runs every step and resolves when none fails", async () => {
    const { merchant } = await createMerchant();
    const [lost] = await seedStalled(merchant.id, "1990-05-01T00:00:00.000Z", 1);
    const { queue, sent } = recordingQueue();
    const when = "1990-05-01T01:00:00.000Z";
    await worker.scheduled(
      createScheduledController({ scheduledTime: at(when), cron: "*/5 * * * *" }),
      { ...env, FULFILLMENTS: queue },
      createExecutionContext(),
    );
    expect(sent.map((nudge) => nudge.transaction_id)).toEqual([lost]);
    expect(await reconciliationRunAt(when)).toEqual({ found: 0 });
  });
});
