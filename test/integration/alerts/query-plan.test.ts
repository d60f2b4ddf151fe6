import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { runAlertChecks } from "../../../src/alerts/scheduled";
import { openDatabase } from "../../../src/db/client";
import { createMerchant } from "../../support/fixtures";
import { recordingD1 } from "../../support/recording-d1";
import { dbFor, shardedDb } from "../../support/shards";
import { seedFulfillment, seedTransactions, transactionRow } from "../../support/status-api";
import { HOUR, refuseKey, seedAlert } from "./support";

describe("an alert run is served by indexes", () => {
  it("reads no table whole but merchants: transactions, operations, events, fulfilments and alerts come from their indexes", async () => {
    // Something for every query to look at: candidates of each kind, open alerts to recheck, notifications due.
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    await seedTransactions([
      ...Array.from({ length: 20 }, () => transactionRow(merchantId)),
      ...Array.from({ length: 5 }, () => transactionRow(merchantId, { status: "pending", paymentType: "ideal" })),
      ...Array.from({ length: 5 }, () => transactionRow(merchantId, { status: "refunded", capturedAmount: "1", refundedAmount: "2" })),
    ]);
    const [disputed] = await seedTransactions([transactionRow(merchantId, { status: "chargeback-initiated", capturedAmount: "10.50" })]);
    await seedFulfillment({ merchantId, transactionId: disputed?.id ?? "", status: "delivered" });
    await seedAlert(merchantId);
    await refuseKey(merchantId, true);
    const shard = await dbFor(merchantId);
    await runAlertChecks({ env, db: openDatabase(shard), now: Date.now() });

    const { d1, statements } = recordingD1(shard);
    await runAlertChecks({ env, db: openDatabase(d1), now: Date.now() + 48 * HOUR });
    expect(statements.length).toBeGreaterThan(8);
    for (const { sql, params } of statements) {
      const plan = await shardedDb
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .bind(...params)
        .all<{ detail: string }>();
      const details = plan.results.map((row) => row.detail);
      // `SCAN m`: every merchant, once per run (the forged count walks them to reach each one's index range).
      const wholeTables = details.filter(
        (detail) => /^SCAN (?!m\b|j\b|json_each|\(subquery)\S+(?! USING)/.test(detail) && !/ USING (COVERING )?INDEX /.test(detail),
      );
      expect(wholeTables, `${sql}\n${details.join("\n")}`).toEqual([]);
      expect(details.join("\n"), sql).not.toMatch(/alerts_merchant_state_opened/);
    }
  });
});
