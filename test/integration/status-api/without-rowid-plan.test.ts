import { beforeAll, describe, expect, it } from "vitest";
import { markStalledQuery } from "../../../src/fulfillment/outbox";
import { pageQuery, scanEndQuery } from "../../../src/moves/rows";
import { MOVED_TABLES } from "../../../src/moves/tables";
import { operationsOfTransaction } from "../../../src/transactions/queries";
import type { TransactionWrite } from "../../../src/transactions/records";
import { removeReplacedReferences } from "../../../src/transactions/references";
import { createMerchant } from "../../support/fixtures";
import { planText, recordKeySeek } from "../../support/query-plan";
import { db, seedTransactions, transactionRow } from "../../support/status-api";

// 0026 made operations, transaction_references and fulfillments WITHOUT ROWID: their primary key, which leads with
// merchant_id, is now a covering "index" the planner could take for any merchant-scoped read. These reads must still
// seek the secondary index that bounds them to one transaction (or to pending rows), never a merchant's whole range.
describe("reads of the WITHOUT ROWID tables keep their secondary indexes", () => {
  let merchantId: string;

  beforeAll(async () => {
    const [a, b] = [await createMerchant(), await createMerchant()];
    merchantId = a.merchant.id;
    await seedTransactions([
      ...Array.from({ length: 30 }, () => transactionRow(a.merchant.id, { status: "completed" })),
      ...Array.from({ length: 30 }, () => transactionRow(b.merchant.id)),
    ]);
  });

  it("a transaction's operations are one seek of its record's key (0030: the history is the record's)", async () => {
    const plan = await planText(operationsOfTransaction({ db, merchantId, transactionId: "tr_x" }));
    expect(plan).toMatch(recordKeySeek());
    expect(plan).not.toMatch(/TEMP B-TREE|SCAN transactions|\(merchant_id=\?\)$/m);
  });

  it("removing a record's replaced references seeks the record, then each reference by its key (0031: no index by transaction)", async () => {
    const write = {
      merchantId,
      version: "000001|x",
      snapshot: { id: "tr_x", status: "authorized", invoice_id: "inv-1", name: null, metadata: {} },
    } as unknown as TransactionWrite;
    const [remove] = removeReplacedReferences([write]);
    if (!remove) throw new Error("removeReplacedReferences wrote no statement");
    const plan = await planText(remove);
    expect(plan).toMatch(recordKeySeek("t"));
    expect(plan).toMatch(/SEARCH transaction_references USING PRIMARY KEY \(merchant_id=\? AND reference=\? AND transaction_id=\?\)/);
    expect(plan).not.toMatch(/SCAN (transaction_references|t)\b/);
  });

  it("the stalled-fulfilment sweep reads pending rows from fulfillments_pending", async () => {
    const now = Date.now();
    const plan = await planText(markStalledQuery({ db, now, requestedBefore: now, markedBefore: now, limit: 100 }));
    expect(plan).toMatch(/SEARCH fulfillments USING INDEX fulfillments_pending \(requested_at<\?\)/);
    expect(plan).not.toMatch(/SCAN fulfillments/);
  });

  it.each([
    ["first page", null],
    ["next page", ["ev_m", "m_x"]],
  ])(
    "a move copies the inbox (keyed by id since 0029) walking a bounded range of its key in order, %s: no sort, no index of the merchant's inbox",
    async (_name, after) => {
      const inbox = MOVED_TABLES.find((table) => table.name === "events");
      if (!inbox) throw new Error("events is not a moved table");
      const plan = await planText(pageQuery({ moved: inbox, merchantId, after, limit: 500, scanKeys: 5_000 }));
      // Both ends of the range bound the walk: it stops at the scan's end however few of the keys are the merchant's.
      expect(plan).toMatch(
        after
          ? /^SEARCH x USING PRIMARY KEY \(\(id,merchant_id\)>\(\?,\?\) AND \(id,merchant_id\)<\(\?,\?\)\)$/m
          : /^SEARCH x USING PRIMARY KEY \(\(id,merchant_id\)<\(\?,\?\)\)$/m,
      );
      // The scan's end: the primary key walked from the cursor, `scanKeys` entries at most.
      expect(plan).toMatch(after ? /SEARCH k USING PRIMARY KEY \(\(id,merchant_id\)>\(\?,\?\)\)$/m : /SCAN k$/m);
      const end = await planText(scanEndQuery({ moved: inbox, after, scanKeys: 5_000 }));
      expect(end).toMatch(after ? /^SEARCH k USING PRIMARY KEY \(\(id,merchant_id\)>\(\?,\?\)\)$/m : /^SCAN k$/m);
      expect(`${plan}\n${end}`).not.toMatch(/TEMP B-TREE|events_transaction|events_pending|events_first|events_rejected|SCAN x/);
    },
  );
});
