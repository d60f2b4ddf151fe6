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
    // The first run started the refund scan at the merchant's newest record: the refunds change again, for the next to read.
    await shard
      .prepare("UPDATE transactions SET updated_at = ? WHERE merchant_id = ? AND status = 'refunded'")
      .bind(new Date(Date.now() + HOUR).toISOString(), merchantId)
      .run();

    const { d1, statements } = recordingD1(shard);
    await runAlertChecks({ env, db: openDatabase(d1), now: Date.now() + 48 * HOUR });
    expect(statements.length).toBeGreaterThan(8);
    const plans: string[] = [];
    for (const { sql, params } of statements) {
      const plan = await shardedDb
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .bind(...params)
        .all<{ detail: string }>();
      const details = plan.results.map((row) => row.detail);
      // `SCAN m`: every merchant, once per run (the forged count, the finders and the refund scan walk them to reach each one's
      // index range); a JSON list (VIRTUAL TABLE) is no table.
      const wholeTables = details.filter(
        (detail) =>
          /^SCAN (?!m\b|j\b|json_each|\(subquery)\S+(?! USING)/.test(detail) && !/ USING (COVERING )?INDEX | VIRTUAL TABLE /.test(detail),
      );
      expect(wholeTables, `${sql}\n${details.join("\n")}`).toEqual([]);
      expect(details.join("\n"), sql).not.toMatch(/alerts_merchant_state_opened/);
      // Not even through an index's whole length: every read of transactions seeks a merchant's range or a key.
      expect(details.join("\n"), sql).not.toMatch(/^SCAN t\b/m);
      plans.push(details.join("\n"));
    }
    const all = plans.join("\n");
    // The finders of authorized_not_captured, apm_pending and chargeback_after_fulfillment seek each merchant's statuses.
    const statusSeek = /^SEARCH t USING INDEX transactions_merchant_status_updated \(merchant_id=\? AND status=\?\)$/m;
    expect(plans.filter((plan) => statusSeek.test(plan))).toHaveLength(3);
    // The refund scan: each merchant's changes past its watermark (whether any, its horizon), then the range between them.
    expect(all).toMatch(
      /^SEARCH t EXISTS USING COVERING INDEX transactions_merchant_updated \(merchant_id=\? AND \(updated_at,id\)>\(\?,\?\)\)$/m,
    );
    expect(all).toMatch(
      /^SEARCH t USING COVERING INDEX transactions_merchant_updated \(merchant_id=\? AND \(updated_at,id\)>\(\?,\?\)\)$/m,
    );
    // (SQLite's plan prints the upper bound `<=` as `<`.)
    expect(all).toMatch(
      /^SEARCH t USING (COVERING )?INDEX transactions_merchant_(status_)?updated \(merchant_id=\? AND .*\(updated_at,id\)>\(\?,\?\) AND \(updated_at,id\)<=?\(\?,\?\)\)$/m,
    );
  });
});
