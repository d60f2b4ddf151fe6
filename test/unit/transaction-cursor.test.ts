import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors";
import { continueFilters, decodeCursor, encodeCursor } from "../../src/transactions/cursor";

describe("transaction list cursor", () => {
  it("round-trips the position and the filters, URL-safe", () => {
    const position = { updatedAt: "2026-01-31T12:00:00.123Z", id: "tr_Ab-9_?é" };
    const filters = { status: "completed" as const, updatedAfter: "2026-01-01T00:00:00.000Z" };
    const cursor = encodeCursor(position, filters);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor)).toEqual({ position, filters });
    expect(decodeCursor(encodeCursor(position, {}))).toEqual({ position, filters: { status: undefined, updatedAfter: undefined } });
  });

  it.each(["", "!!", "eyJ2IjoxfQ", "bm90IGpzb24", `${encodeCursor({ updatedAt: "x", id: "y" }, {})}=`])("refuses %j", (cursor) => {
    expect(() => decodeCursor(cursor)).toThrow(ApiError);
  });

  it("continues with the cursor's filters; a query may repeat them but not change them", () => {
    const fromCursor = { status: "failed" as const, updatedAfter: undefined };
    expect(continueFilters(fromCursor, {})).toEqual(fromCursor);
    expect(continueFilters(fromCursor, { status: "failed" })).toEqual(fromCursor);
    expect(() => continueFilters(fromCursor, { status: "completed" })).toThrow(/different status/);
    expect(() => continueFilters(fromCursor, { updatedAfter: "2026-01-01T00:00:00.000Z" })).toThrow(/different updated_after/);
  });
});
