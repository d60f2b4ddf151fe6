import { beforeAll, describe, expect, it } from "vitest";
import { pipelineReads } from "../../../src/operations/pipeline";
import { timelineReads } from "../../../src/timeline/timeline";
import { transactionPageQuery } from "../../../src/transactions/queries";
import { createMerchant } from "../../support/fixtures";
import { planText, recordKeySeek } from "../../support/query-plan";
import { db, seedTransactions, transactionRow } from "../../support/status-api";

describe("the console's reads are served by indexes", () => {
  let merchantId: string;

  beforeAll(async () => {
    const merchant = await createMerchant();
    merchantId = merchant.merchant.id;
    await seedTransactions(
      Array.from({ length: 40 }, (_, i) =>
        transactionRow(merchantId, { paymentType: i % 4 ? "card" : "sandbox-apm", status: "completed" }),
      ),
    );
  });

  it.each([
    ["payment_type", { paymentType: "sandbox-apm" }, undefined],
    ["payment_type, next page", { paymentType: "sandbox-apm" }, { updatedAt: "2026-05-01T00:00:00.000Z", id: "tr_m" }],
    ["payment_type and updated_after", { paymentType: "card", updatedAfter: "2026-01-01T00:00:00.000Z" }, undefined],
  ])("the list with %s walks transactions_merchant_payment_type_updated, no sort", async (_name, filters, position) => {
    const plan = await planText(transactionPageQuery({ db, merchantId, filters, position, limit: 51 }));
    expect(plan).toMatch(
      /SEARCH transactions USING (COVERING )?INDEX transactions_merchant_payment_type_updated \(merchant_id=\? AND payment_type=\?/,
    );
    expect(plan).not.toMatch(/TEMP B-TREE/);
  });

  it("the timeline finds the transaction's events by index, then their deliveries and fetch-backs by key", async () => {
    const [, deliveries, fetches, history, attempts, folded] = await Promise.all(
      timelineReads({ db, merchantId, transactionId: "tr_x" }).map((query) => planText(query)),
    );
    expect(deliveries).toMatch(/SEARCH events USING (COVERING )?INDEX events_transaction \(merchant_id=\? AND transaction_id=\?\)/);
    expect(deliveries).toMatch(
      /SEARCH webhook_deliveries USING (COVERING )?INDEX sqlite_autoindex_webhook_deliveries_1 \(merchant_id=\? AND event_id=\?\)/,
    );
    expect(fetches).toMatch(/SEARCH fetch_backs USING INDEX fetch_backs_event \(merchant_id=\? AND event_id=\?\)/);
    // The record's status history (0030; 0035 merged the table's last rows into it) is one seek of its key.
    expect(history).toMatch(recordKeySeek());
    expect(history).not.toMatch(/transaction_status_changes/);
    expect(attempts).toMatch(
      /SEARCH fulfillment_attempts USING INDEX fulfillment_attempts_transaction \(merchant_id=\? AND transaction_id=\?\)/,
    );
    // The first deliveries and fetch-backs folded into the inbox rows (0024): the same index search.
    expect(folded).toMatch(/SEARCH events USING INDEX events_transaction \(merchant_id=\? AND transaction_id=\?\)/);
    for (const plan of [deliveries, fetches, history, attempts, folded]) expect(plan).not.toMatch(/^SCAN (?!j\b)/m);
  });

  it("the pipeline's reads search their indexes; only the service-wide reconciliation runs are read whole", async () => {
    const plans = await Promise.all(
      pipelineReads({ db, merchantId, from: Date.parse("2026-01-01T00:00:00.000Z"), to: Date.parse("2026-01-02T00:00:00.000Z") }).map(
        (query) => planText(query),
      ),
    );
    const [perMinute, outcomes, lags, foldedMinutes, waiting, fulfilments, letters, backstop, reconciliation] = plans;
    for (const plan of [perMinute, outcomes, lags]) {
      expect(plan).toMatch(
        /SEARCH webhook_deliveries USING (COVERING )?INDEX webhook_deliveries_received \(merchant_id=\? AND received_at>\? AND received_at<\?\)/,
      );
    }
    // First deliveries folded into the inbox rows (0024), counted per minute (0032): a range of pipeline_minutes' key, in
    // its order (no sort for the window function's running sum nor for the answer); the inbox is not read.
    expect(foldedMinutes).toMatch(/^SEARCH pipeline_minutes USING PRIMARY KEY \(merchant_id=\? AND minute>\? AND minute<\?\)$/m);
    expect(foldedMinutes).not.toMatch(/TEMP B-TREE|\bevents\b/);
    expect(waiting).toMatch(/SEARCH events USING INDEX events_pending \(merchant_id=\?\)/);
    expect(fulfilments).toMatch(/^SEARCH fulfillments/m);
    expect(letters).toMatch(/SEARCH dead_letters USING INDEX dead_letters_merchant \(merchant_id=\?\)/);
    expect(backstop).toMatch(/^SEARCH event_log_cursors/m);
    // The minute rows' window function scans its own co-routine over the key's range, never a table.
    for (const plan of plans.slice(0, -1)) expect(plan).not.toMatch(/^SCAN (?!\(subquery-\d+\)$)/m);
    expect(reconciliation).toMatch(/^SCAN reconciliation_runs/m);
  });
});
