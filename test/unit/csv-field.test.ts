import { describe, expect, it } from "vitest";
import { csvField } from "../../src/transactions/export";

const LEADS = ["=", "+", "-", "@", "\t", "\r"];
const TEXT_COLUMNS = ["id", "status", "currency", "payment_type", "gateway_name", "invoice_id", "name", "metadata", "last_event_name"];

/** The cells a reader splitting on `;`, tabs and line breaks (ignoring quotes) starts inside one field, after the first. */
const innerCells = (field: string) => field.split(/[;\t\r\n]/).slice(1);

describe("CSV fields: formula injection", () => {
  it("guards every text column whose value starts with a formula lead: a leading ' inside a quoted field", () => {
    for (const column of TEXT_COLUMNS) {
      for (const lead of LEADS) {
        expect(csvField(column, `${lead}SUM(A1)`), `${column} ${JSON.stringify(lead)}`).toBe(`"'${lead}SUM(A1)"`);
      }
    }
    expect(csvField("name", '=HYPERLINK("https://evil.example")')).toBe('"\'=HYPERLINK(""https://evil.example"")"');
  });

  it("writes well-formed amounts as they are, a negative one included, and guards anything else in an amount column", () => {
    for (const amount of ["-10.00", "10.50", "0", "-0.5", "1234.5000"]) expect(csvField("amount", amount)).toBe(amount);
    expect(csvField("captured_amount", "-10.00")).toBe("-10.00");
    expect(csvField("refunded_amount", "=1+1")).toBe(`"'=1+1"`);
    expect(csvField("available_amount", "-1+1")).toBe(`"'-1+1"`);
    // Outside an amount column a number-looking value is text like any other.
    expect(csvField("invoice_id", "-10.00")).toBe(`"'-10.00"`);
    expect(csvField("sandbox", true)).toBe("true");
    expect(csvField("name", null)).toBe("");
  });

  it("quotes a value holding either separator, a quote, a tab or a line break, and leaves plain text bare", () => {
    expect(csvField("name", "a,b")).toBe('"a,b"');
    expect(csvField("name", "a;b")).toBe('"a;b"');
    expect(csvField("name", 'say "hi"')).toBe('"say ""hi"""');
    expect(csvField("name", "a\tb")).toBe('"a\tb"');
    expect(csvField("name", "a\r\nb")).toBe('"a\r\nb"');
    expect(csvField("name", "Order #1")).toBe("Order #1");
  });

  it("guards every cell a `;`-separated locale would start inside a field", () => {
    for (const separator of [";", "\t", "\n", "\r\n"]) {
      for (const lead of [...LEADS, '"']) {
        const field = csvField("name", `ok${separator}${lead}cmd|' /C calc'!A0`);
        expect(field.startsWith('"'), JSON.stringify(field)).toBe(true);
        for (const cell of innerCells(field)) expect(cell, JSON.stringify(field)).not.toMatch(/^[=+\-@"]/);
      }
    }
    expect(csvField("name", "a;=1+1")).toBe(`"a;'=1+1"`);
    expect(csvField("name", "a;b")).toBe('"a;b"');
    // A trailing `;` would make our closing quote the start of a `;`-reader's cell.
    expect(csvField("name", "a;")).toBe(`"a;'"`);
  });
});
