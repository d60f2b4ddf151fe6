import { describe, expect, it } from "vitest";
import { eventually, openShop } from "../../support/sandbox";
import { dbFor } from "../../support/shards";
import { entriesOf, sinkAnswers, timelineOf, untilStatus } from "../console-api/support";

/** The payment's fulfilment attempt rows, and its outbox row's record of the delivering attempt. */
async function attemptStorage(merchantId: string, transactionId: string) {
  const db = await dbFor(merchantId);
  const attempts = await db
    .prepare("SELECT attempt, outcome, http_status FROM fulfillment_attempts WHERE merchant_id = ? AND transaction_id = ? ORDER BY id")
    .bind(merchantId, transactionId)
    .all<{ attempt: number; outcome: string; http_status: number | null }>();
  const outbox = await db
    .prepare("SELECT status, attempts, delivered_http_status FROM fulfillments WHERE merchant_id = ? AND transaction_id = ?")
    .bind(merchantId, transactionId)
    .first<{ status: string; attempts: number; delivered_http_status: number | null }>();
  return { attempts: attempts.results, outbox };
}

describe("the fulfilment attempt fold: the delivering attempt is the outbox row's (0028)", () => {
  it("writes a row for the failed attempt only, and the timeline shows both attempts as before", async () => {
    const shop = await openShop({ fulfillment: true, unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    await sinkAnswers(shop, 503, 1);
    const payment = await shop.pay({ card: "4242424242424242", amount: "7.00", currency: "EUR" });
    await shop.relay({ rounds: 10 });
    await untilStatus(shop, payment.id, "completed");
    const timeline = await eventually(
      async () => {
        const shown = await timelineOf(shop.merchant.api_key, payment.id);
        expect(entriesOf(shown, "fulfillment_attempt").map((entry) => entry.detail.outcome)).toEqual(["failed", "delivered"]);
        return shown;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );

    const stored = await attemptStorage(merchantId, payment.id);
    expect(stored.attempts).toEqual([{ attempt: 1, outcome: "failed", http_status: 503 }]);
    expect(stored.outbox).toEqual({ status: "delivered", attempts: 2, delivered_http_status: 200 });
    const [failed, delivered] = entriesOf(timeline, "fulfillment_attempt");
    expect(failed?.detail).toEqual({ attempt: 1, outcome: "failed", http_status: 503, error_class: "http_status" });
    expect(delivered?.detail).toEqual({ attempt: 2, outcome: "delivered", http_status: 200, error_class: null });
    expect(delivered?.summary).toBe("Fulfilment notification, attempt 2: delivered (the merchant answered 200).");
  });

  it("shows an attempt delivered before 0028 once: its row, and no second entry from an outbox row without a status", async () => {
    const shop = await openShop({ fulfillment: true, unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const payment = await shop.pay({ card: "4242424242424242", amount: "8.00", currency: "EUR" });
    await shop.relay({ rounds: 10 });
    await untilStatus(shop, payment.id, "completed");
    await eventually(async () => expect((await attemptStorage(merchantId, payment.id)).outbox?.status).toBe("delivered"), {
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    // As 0028 found a row delivered before it: the attempt in fulfillment_attempts, no status on the outbox row.
    const db = await dbFor(merchantId);
    const { outbox } = await attemptStorage(merchantId, payment.id);
    await db.batch([
      db
        .prepare("UPDATE fulfillments SET delivered_http_status = NULL WHERE merchant_id = ? AND transaction_id = ?")
        .bind(merchantId, payment.id),
      db
        .prepare(
          "INSERT INTO fulfillment_attempts (merchant_id, transaction_id, attempt, at, outcome, http_status) VALUES (?, ?, ?, ?, 'delivered', 200)",
        )
        .bind(merchantId, payment.id, outbox?.attempts ?? 1, new Date().toISOString()),
    ]);
    const attempts = entriesOf(await timelineOf(shop.merchant.api_key, payment.id), "fulfillment_attempt");
    expect(attempts.map((entry) => entry.detail)).toEqual([{ attempt: 1, outcome: "delivered", http_status: 200, error_class: null }]);
  });
});
