import { expect } from "vitest";
import { getWithKey } from "../../support/status-api";

/** Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF records, line breaks inside quotes). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  // Ends at the last character; every branch moves i forward.
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (char === '"') quoted = false;
      else field += char;
    } else if (char === '"') quoted = true;
    else if (char === ",") {
      row.push(field);
      field = "";
    } else if (char === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i++;
    } else field += char;
  }
  expect(field, "the last record ends with CRLF").toBe("");
  expect(row).toEqual([]);
  return rows;
}

/** GETs an export and returns the response with its body as text. */
export async function exportOf(apiKey: string, query: Record<string, string>) {
  const response = await getWithKey(`/v1/transactions/export?${new URLSearchParams(query)}`, apiKey);
  // Decoded by hand: workerd warns when .text() reads a body whose type (application/x-ndjson) it does not know for text.
  return { response, text: new TextDecoder().decode(await response.arrayBuffer()) };
}

/** The NDJSON lines of an export, parsed. */
export const ndjsonLines = (text: string) =>
  text
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
