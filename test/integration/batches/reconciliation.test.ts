import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../../src/index";
import { ADMIN, call } from "../../support/fixtures";
import { eventually, openShop } from "../../support/sandbox";

const statusOf = async (merchantId: string, id: string) =>
  (
    await env.DB.prepare("SELECT status FROM transactions WHERE merchant_id = ? AND id = ?")
      .bind(merchantId, id)
      .first<{ status: string }>()
  )?.status;

async function runCron(at: number) {
  const ctx = createExecutionContext();
  await worker.scheduled?.(createScheduledController({ scheduledTime: at, cron: "*/5 * * * *" }), env, ctx);
  await waitOnExecutionContext(ctx);
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

    // Half an hour later the cron finds the record stuck in a non-final status and refreshes it in the batch lane.
    await runCron(Date.now() + 31 * 60_000);
    await eventually(async () => expect(await statusOf(merchantId, payment.id)).toBe("completed"), { timeoutMs: 15_000 });

    const runs = await call("/admin/reconciliation/runs", { headers: ADMIN });
    const { runs: list } = (await runs.json()) as { runs: { found: number; refreshed: number; fixed: number }[] };
    expect(list[0]).toMatchObject({ found: 1, refreshed: 1, fixed: 1 });
    // The capture seen through reconciliation triggers the fulfilment like any other.
    await eventually(async () => {
      const row = await env.DB.prepare("SELECT status FROM fulfillments WHERE merchant_id = ? AND transaction_id = ?")
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
    const at = Date.now() + 31 * 60_000;
    await runCron(at);
    const first = (await (await call("/admin/reconciliation/runs", { headers: ADMIN })).json()) as { runs: { found: number }[] };
    await eventually(async () => {
      const row = await env.DB.prepare("SELECT reconciled_at FROM transactions WHERE merchant_id = ? AND id = ?")
        .bind(merchantId, held.id)
        .first<{ reconciled_at: string | null }>();
      expect(row?.reconciled_at).not.toBeNull();
    });
    await runCron(at + 60_000);
    const second = (await (await call("/admin/reconciliation/runs", { headers: ADMIN })).json()) as { runs: { found: number }[] };
    // Only the authorized one (awaiting a manual capture) was stale; right after its refresh it is not picked again.
    expect(first.runs[0]?.found).toBeGreaterThanOrEqual(1);
    expect(second.runs[0]?.found).toBe(0);
  }, 30_000);
});
