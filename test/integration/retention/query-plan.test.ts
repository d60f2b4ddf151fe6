import { sql } from "drizzle-orm";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import { beforeAll, describe, expect, it } from "vitest";
import { archiveObjects } from "../../../src/db/schema";
import { archiveCandidates, merchantsWithWork } from "../../../src/retention/archive";
import { archivedObjectsOf } from "../../../src/retention/history";
import { deleteManifestRows } from "../../../src/retention/history-rows";
import { pruneStatements } from "../../../src/retention/prune";
import { exportPageQuery } from "../../../src/transactions/export";
import { createMerchant } from "../../support/fixtures";
import { planText, recordKeySeek } from "../../support/query-plan";
import { db, seedTransactions, transactionRow } from "../../support/status-api";

describe("retention and export queries are served by indexes", () => {
  let merchantId: string;

  beforeAll(async () => {
    // Rows for this merchant and another, so the planner has a table to choose over.
    const [a, b] = [await createMerchant(), await createMerchant()];
    merchantId = a.merchant.id;
    await seedTransactions([
      ...Array.from({ length: 40 }, () => transactionRow(a.merchant.id, { status: "completed" })),
      ...Array.from({ length: 40 }, () => transactionRow(b.merchant.id)),
    ]);
  });

  it.each([
    ["first page", undefined],
    ["next page", { createdDay: 2461100.5, id: "tr_m" }],
  ])("export, %s: searches transactions_merchant_created by merchant and instant, no sort", async (_name, position) => {
    const plan = await planText(
      exportPageQuery({
        db,
        merchantId,
        after: Date.parse("2026-03-01T00:00:00.000Z"),
        before: Date.parse("2026-03-08T00:00:00.000Z"),
        position,
      }),
    );
    expect(plan).toMatch(/SEARCH transactions USING INDEX transactions_merchant_created \(merchant_id=\? AND <expr>>\? AND <expr><\?\)/);
    expect(plan).not.toMatch(/TEMP B-TREE|^SCAN/m);
  });

  it.each([
    ["first object", null],
    ["after the cursor", { updatedAt: "2026-01-01T00:00:00.000Z", id: "tr_m" }],
  ])("archive candidates, %s: search transactions_merchant_updated, no sort", async (_name, from) => {
    const plan = await planText(archiveCandidates({ db, merchantId, cutoff: "2026-02-01T00:00:00.000Z", from }));
    // The cursor bounds the search in the index too: `(updated_at,id)>(?,?)`.
    expect(plan).toMatch(
      /SEARCH transactions USING (COVERING )?INDEX transactions_merchant_updated \(merchant_id=\? AND (\(updated_at,id\)>\(\?,\?\) AND )?updated_at<\?\)/,
    );
    expect(plan).not.toMatch(/TEMP B-TREE|^SCAN/m);
  });

  it("finding the merchants with work probes each merchant's transactions from its cursor on, never its whole history", async () => {
    const plan = await planText(merchantsWithWork({ db, cutoff: "2026-02-01T00:00:00.000Z" }));
    expect(plan).toMatch(
      /SEARCH t USING (COVERING )?INDEX transactions_merchant_updated \(merchant_id=\? AND updated_at>\? AND updated_at<\?\)/,
    );
    expect(plan).toMatch(/SEARCH archive_objects USING (COVERING )?INDEX archive_objects_one_writing/);
    expect(plan).not.toMatch(/SCAN (t|archive_objects)\b/);
  });

  it("the status API finds a transaction's archive objects in its record's names: one seek of its key (0035: no table beside)", async () => {
    const plan = await planText(archivedObjectsOf({ db, merchantId, transactionId: "tr_x" }));
    expect(plan).toMatch(recordKeySeek());
    expect(plan).toMatch(/SCAN n\b/); // json_each over the one record's names
    expect(plan).not.toMatch(/archived_histories|archive_objects/);
    expect(plan).not.toMatch(/SCAN transactions\b/);
  });

  it("the archive's strip UPDATE, which lists the object's name, seeks its records by key", async () => {
    const writing = sql`${archiveObjects.id} = 1 AND ${archiveObjects.status} = 'writing'`;
    const strip = deleteManifestRows(merchantId, writing, "2026-01-01/000000000Z-tr_x").find((statement) =>
      new SQLiteAsyncDialect().sqlToQuery(statement).sql.startsWith('UPDATE "transactions"'),
    );
    if (!strip) throw new Error("no strip UPDATE among the finish's statements");
    const plan = await planText(strip);
    expect(plan).toMatch(/SEARCH transactions USING INDEX sqlite_autoindex_transactions_1 \(merchant_id=\? AND id=\?\)/);
    expect(plan).not.toMatch(/^SCAN transactions\b/m);
  });

  it.each(Object.entries(pruneStatements({ now: Date.now(), retentionDays: 30 })))(
    "pruning %s searches an index, never scanning the table",
    async (name, statement) => {
      const plan = await planText(statement);
      const table = name === "ignored_events" ? "events" : name;
      // The per-merchant walks scan merchants (the outer loop), then search the table's (merchant_id, time) index, or
      // its key when that leads with them (pipeline_minutes, WITHOUT ROWID).
      expect(plan).toMatch(new RegExp(`SEARCH (${table}|x|e) USING ((COVERING )?INDEX|PRIMARY KEY \\(merchant_id=\\? AND minute<\\?\\))`));
      expect(plan).not.toMatch(new RegExp(`SCAN (${table}|x|e)\\b`));
    },
  );
});
