import { describe, expect, it } from "vitest";
import { call, createMerchant } from "../../support/fixtures";
import { seedTransactions, transactionRow } from "../../support/status-api";
import { exportOf, ndjsonLines, parseCsv } from "./export-support";

const RANGE = { created_after: "2026-03-01T00:00:00Z", created_before: "2026-03-08T00:00:00Z" };

/** Cell starts a spreadsheet may evaluate (OWASP's list), each put at the head of several text columns below. */
const LEADS = ["=", "+", "-", "@", "\t", "\r"];

describe("export: CSV injection", () => {
  it("guards every text column, Smart Router's and the customer's alike, and keeps amounts machine-readable", async () => {
    const shop = await createMerchant();
    const id = shop.merchant.id;
    await seedTransactions(
      LEADS.map((lead, n) =>
        transactionRow(id, {
          id: `${lead}tr_lead${n}`,
          createdAt: `2026-03-02T10:00:0${n}Z`,
          status: `${lead}status`,
          currency: `${lead}EU`,
          paymentType: `${lead}cmd|' /C calc'!A0`,
          gatewayName: `${lead}gateway`,
          invoiceId: `${lead}invoice`,
          name: `${lead}HYPERLINK("https://evil.example")`,
          metadata: { note: `x;${lead}1+1` },
          lastEventId: `${lead}ev`,
          lastEventName: `${lead}transaction.captured`,
          amount: "-10.00",
          capturedAmount: `${lead}1+1`,
        }),
      ),
    );
    const { text } = await exportOf(shop.api_key, RANGE);
    const [header, ...rows] = parseCsv(text);
    const column = (name: string) => header?.indexOf(name) ?? -1;
    expect(rows).toHaveLength(LEADS.length);
    const guarded = ["id", "status", "currency", "payment_type", "gateway_name", "invoice_id", "name", "last_event_id", "last_event_name"];
    for (const [n, row] of rows.entries()) {
      const lead = LEADS[n] ?? "";
      for (const name of guarded) expect(row[column(name)]?.slice(0, 2), `${name} of row ${n}`).toBe(`'${lead}`);
      // A negative amount stays a number; a malformed one is text, and guarded.
      expect(row[column("amount")]).toBe("-10.00");
      expect(row[column("captured_amount")]).toBe(`'${lead}1+1`);
      // Metadata is JSON text, where a tab or a carriage return is escaped: only the other leads follow the `;` as they are.
      const note = lead === "\t" || lead === "\r" ? `x;${lead}1+1` : `x;'${lead}1+1`;
      expect(JSON.parse(row[column("metadata")] ?? "")).toEqual({ note });
    }
    expect(text).toContain(",-10.00,");
    // A reader splitting on `;`, tabs and line breaks, quotes ignored (a `;`-locale spreadsheet), starts no cell with a formula.
    for (const cell of text.split(/[;\t\r\n]/)) expect(cell).not.toMatch(/^"?[=+\-@]/);
    // NDJSON carries the values untouched.
    const lines = ndjsonLines((await exportOf(shop.api_key, { ...RANGE, format: "ndjson" })).text);
    expect(lines.map((line) => line.name)).toEqual(LEADS.map((lead) => `${lead}HYPERLINK("https://evil.example")`));
  });
});

describe("export: tenant isolation and authentication", () => {
  it("never contains another merchant's transactions, created in the same range with the same ids", async () => {
    const [a, b] = [await createMerchant(), await createMerchant()];
    const createdAt = "2026-03-02T10:00:00Z";
    await seedTransactions([
      transactionRow(a.merchant.id, { id: "tr_shared", createdAt, name: "A's order" }),
      transactionRow(a.merchant.id, { id: "tr_only_a", createdAt }),
      transactionRow(b.merchant.id, { id: "tr_shared", createdAt, name: "B's order" }),
    ]);
    const ofA = ndjsonLines((await exportOf(a.api_key, { ...RANGE, format: "ndjson" })).text);
    const ofB = ndjsonLines((await exportOf(b.api_key, { ...RANGE, format: "ndjson" })).text);
    expect(ofA.map((line) => [line.id, line.name])).toEqual([
      ["tr_only_a", "Order #1"],
      ["tr_shared", "A's order"],
    ]);
    expect(ofB.map((line) => [line.id, line.name])).toEqual([["tr_shared", "B's order"]]);
    const csvOfB = (await exportOf(b.api_key, RANGE)).text;
    expect(csvOfB).not.toContain("tr_only_a");
    expect(csvOfB).not.toContain("A's order");
  });

  it("refuses a missing, malformed or revoked key with the status API's 401, before any validation", async () => {
    const merchant = await createMerchant();
    for (const authorization of [undefined, "Bearer nope", `Basic ${btoa("a:b")}`, `Bearer ${merchant.api_key}x`]) {
      const response = await call("/v1/transactions/export", { headers: authorization ? { authorization } : {} });
      expect(response.status, authorization).toBe(401);
      expect(response.headers.get("www-authenticate")).toBe('Bearer realm="status-api"');
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    }
  });

  it("is never taken for the transaction id `export`", async () => {
    const merchant = await createMerchant();
    await seedTransactions([transactionRow(merchant.merchant.id, { id: "export", createdAt: "2026-03-03T00:00:00Z" })]);
    const bare = await call("/v1/transactions/export", { headers: { authorization: `Bearer ${merchant.api_key}` } });
    expect(bare.status).toBe(400);
    expect(((await bare.json()) as { error: { code: string } }).error.code).toBe("invalid_query");
    const { response, text } = await exportOf(merchant.api_key, { ...RANGE, format: "ndjson" });
    expect(response.status).toBe(200);
    expect(ndjsonLines(text).map((line) => line.id)).toEqual(["export"]);
    // The transaction's sub-resources are still reached by its id.
    const events = await call("/v1/transactions/export/events", { headers: { authorization: `Bearer ${merchant.api_key}` } });
    expect(events.status).toBe(200);
  });

  it("is listed in the OpenAPI document with both media types", async () => {
    const document = (await (await call("/v1/openapi.json")).json()) as {
      paths: Record<string, { get?: { responses: Record<string, { content?: Record<string, unknown> }> } }>;
    };
    const route = document.paths["/v1/transactions/export"]?.get;
    expect(Object.keys(route?.responses["200"]?.content ?? {})).toEqual(["text/csv", "application/x-ndjson"]);
    expect(Object.keys(route?.responses ?? {})).toEqual(expect.arrayContaining(["200", "400", "401", "429"]));
  });
});
