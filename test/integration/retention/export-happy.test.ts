import { beforeAll, describe, expect, it } from "vitest";
import { EXPORT_PAGE_SIZE } from "../../../src/transactions/export";
import { createMerchant } from "../../support/fixtures";
import { getJson, seedEvent, seedFulfillment, seedOperation, seedTransactions, transactionRow } from "../../support/status-api";
import { exportOf, ndjsonLines, parseCsv } from "./export-support";
import { archiveAll, rowsInD1 } from "./support";

const RANGE = { created_after: "2026-03-01T00:00:00Z", created_before: "2026-03-08T00:00:00Z" };
const HEADER = [
  "id",
  "status",
  "amount",
  "currency",
  "authorized_amount",
  "captured_amount",
  "refunded_amount",
  "available_amount",
  "payment_type",
  "gateway_name",
  "invoice_id",
  "name",
  "metadata",
  "sandbox",
  "created_at",
  "updated_at",
  "last_event_id",
  "last_event_name",
  "last_event_fired_at",
  "fulfillment_status",
  "fulfillment_requested_at",
  "fulfillment_delivered_at",
];

describe("export: every transaction of the range, streamed", () => {
  let merchant: Awaited<ReturnType<typeof createMerchant>>;
  /** The ids inside RANGE, in the export's order (creation instant, then id). */
  let expected: string[];

  beforeAll(async () => {
    merchant = await createMerchant({ fulfillment_url: "https://shop.example/fulfil" });
    const id = merchant.merchant.id;
    // More than two pages, a minute apart inside the range, their ids in reverse so that order by id alone would differ.
    const bulk = Array.from({ length: 2 * EXPORT_PAGE_SIZE + 37 }, (_, i) =>
      transactionRow(id, {
        id: `tr_bulk${String(9999 - i).padStart(4, "0")}`,
        createdAt: new Date(Date.parse("2026-03-02T00:00:00Z") + i * 60_000).toISOString(),
      }),
    );
    // Smart Router's RFC 3339 times need not be UTC: by instant these are inside, though not as strings.
    const edges = [
      transactionRow(id, { id: "tr_edge_first", createdAt: "2026-03-01T00:00:00Z" }),
      transactionRow(id, { id: "tr_edge_offset_in", createdAt: "2026-02-28T23:30:00.250-01:00" }),
      transactionRow(id, { id: "tr_edge_micro", createdAt: "2026-03-07T23:59:59.999999Z" }),
      transactionRow(id, { id: "tr_edge_offset_in_late", createdAt: "2026-03-08T00:30:00+01:00" }),
      transactionRow(id, { id: "tr_edge_before", createdAt: "2026-02-28T23:59:59.999Z" }),
      transactionRow(id, { id: "tr_edge_at_end", createdAt: "2026-03-08T00:00:00.000Z" }),
      transactionRow(id, { id: "tr_edge_offset_out", createdAt: "2026-03-01T00:30:00+01:00" }),
    ];
    await seedTransactions([...bulk, ...edges]);
    expected = ["tr_edge_first", "tr_edge_offset_in", ...bulk.map((row) => row.id), "tr_edge_offset_in_late", "tr_edge_micro"];
  });

  it("answers NDJSON: the status API's transactions, oldest first by instant, across pages", async () => {
    const { response, text } = await exportOf(merchant.api_key, { ...RANGE, format: "ndjson" });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/x-ndjson");
    expect(response.headers.get("content-disposition")).toBe(
      `attachment; filename="transactions-${merchant.merchant.id}-20260301T000000Z-20260308T000000Z.ndjson"`,
    );
    expect(response.headers.get("cache-control")).toBe("private, no-store");
    const lines = ndjsonLines(text);
    expect(lines.map((line) => line.id)).toEqual(expected);
    for (const id of ["tr_edge_first", "tr_bulk9999", "tr_edge_micro"]) {
      const { transaction } = await getJson<{ transaction: unknown }>(`/v1/transactions/${id}`, merchant.api_key);
      expect(lines.find((line) => line.id === id)).toEqual(transaction);
    }
  });

  it("answers CSV (the default): a header row, RFC 4180 quoting, amounts as Smart Router's decimal strings", async () => {
    const { response, text } = await exportOf(merchant.api_key, RANGE);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(response.headers.get("content-disposition")).toMatch(/filename="transactions-.+\.csv"$/);
    const [header, ...rows] = parseCsv(text);
    expect(header).toEqual(HEADER);
    expect(rows.map((row) => row[0])).toEqual(expected);
    expect(rows[0]).toEqual([
      "tr_edge_first",
      "authorized",
      "10.50",
      "EUR",
      "10.50",
      "0",
      "0",
      "10.50",
      "card",
      "sandbox",
      "iv_seed",
      "Order #1",
      '{"order":"1"}',
      "true",
      "2026-03-01T00:00:00Z",
      expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      "ev_seed",
      "transaction.authorized",
      "2026-01-01T10:00:01.000Z",
      "awaiting_capture",
      "",
      "",
    ]);
  });

  it("quotes commas, quotes and line breaks, and defuses spreadsheet formulas (every text column: export-security)", async () => {
    const quoting = await createMerchant();
    const id = quoting.merchant.id;
    await seedTransactions([
      transactionRow(id, {
        id: "tr_quoted",
        createdAt: "2026-03-01T10:00:00Z",
        name: 'He said "hi", then\r\nleft',
        metadata: { note: "a,b", formula: "=1+1" },
        amount: "1234.5000",
        status: "completed",
      }),
      transactionRow(id, {
        id: "tr_formula",
        createdAt: "2026-03-01T11:00:00Z",
        name: '=HYPERLINK("https://evil.example")',
        invoiceId: "@SUM(A1)",
      }),
      transactionRow(id, { id: "tr_dash", createdAt: "2026-03-01T12:00:00Z", name: "-10 off", paymentType: "+apm" }),
    ]);
    await seedFulfillment({ merchantId: id, transactionId: "tr_quoted", status: "delivered", deliveredAt: "2026-03-01T10:05:00.000Z" });
    const { text } = await exportOf(quoting.api_key, RANGE);
    expect(text).toContain('"He said ""hi"", then\r\nleft"');
    const [, quoted, formula, dash] = parseCsv(text);
    expect(quoted?.slice(0, 3)).toEqual(["tr_quoted", "completed", "1234.5000"]);
    expect(quoted?.[11]).toBe('He said "hi", then\r\nleft');
    expect(JSON.parse(quoted?.[12] ?? "")).toEqual({ note: "a,b", formula: "=1+1" });
    expect(quoted?.slice(19)).toEqual(["delivered", "2026-01-01T10:05:00.000Z", "2026-03-01T10:05:00.000Z"]);
    expect(formula?.[11]).toBe('\'=HYPERLINK("https://evil.example")');
    expect(formula?.[10]).toBe("'@SUM(A1)");
    expect(dash?.[11]).toBe("'-10 off");
    expect(dash?.[8]).toBe("'+apm");
    // NDJSON carries the values untouched.
    const lines = ndjsonLines((await exportOf(quoting.api_key, { ...RANGE, format: "ndjson" })).text);
    expect(lines.map((line) => line.name)).toEqual(['He said "hi", then\r\nleft', '=HYPERLINK("https://evil.example")', "-10 off"]);
  });

  it("includes transactions whose history was archived", async () => {
    const archived = await createMerchant();
    const id = archived.merchant.id;
    const [row] = await seedTransactions([transactionRow(id, { status: "completed", createdAt: "2026-03-03T00:00:00Z" })]);
    if (!row) throw new Error("not seeded");
    await seedEvent({ merchantId: id, transactionId: row.id });
    await seedOperation({ merchantId: id, transactionId: row.id });
    await archiveAll(id);
    expect(await rowsInD1(id)).toEqual({ events: 0, operations: 0 });
    const lines = ndjsonLines((await exportOf(archived.api_key, { ...RANGE, format: "ndjson" })).text);
    expect(lines.map((line) => line.id)).toEqual([row.id]);
  });

  it("answers an empty range with the header alone (CSV) or nothing (NDJSON)", async () => {
    const empty = { created_after: "2020-01-01T00:00:00Z", created_before: "2020-01-02T00:00:00Z" };
    expect(parseCsv((await exportOf(merchant.api_key, empty)).text)).toEqual([HEADER]);
    const ndjson = await exportOf(merchant.api_key, { ...empty, format: "ndjson" });
    expect(ndjson.response.status).toBe(200);
    expect(ndjson.text).toBe("");
  });
});
