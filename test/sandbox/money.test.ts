import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AmountError, currencyExponent, formatAmount, parseAmount } from "../../sandbox/money.ts";

describe("amounts as decimal strings", () => {
  it("formats minor units as Smart Router writes amounts: major units, no trailing zeros", () => {
    expect(formatAmount(1000, "EUR")).toBe("10");
    expect(formatAmount(2299, "EUR")).toBe("22.99");
    expect(formatAmount(2250, "USD")).toBe("22.5");
    expect(formatAmount(5, "EUR")).toBe("0.05");
    expect(formatAmount(0, "EUR")).toBe("0");
    expect(formatAmount(-1050, "EUR")).toBe("-10.5");
    expect(formatAmount(1500, "JPY")).toBe("1500");
    expect(formatAmount(1234, "KWD")).toBe("1.234");
  });

  it("parses decimal strings into minor units without floats", () => {
    expect(parseAmount("22.99", "EUR")).toBe(2299);
    expect(parseAmount("0.1", "EUR")).toBe(10);
    expect(parseAmount("10", "EUR")).toBe(1000);
    expect(parseAmount("10.00", "EUR")).toBe(1000);
    expect(parseAmount("1500", "JPY")).toBe(1500);
    expect(parseAmount("1.5", "KWD")).toBe(1500);
    // 0.1 + 0.2 style float errors cannot happen: 1.15 is exactly 115 cents.
    expect(parseAmount("1.15", "EUR")).toBe(115);
  });

  it("refuses what Smart Router would refuse", () => {
    for (const bad of ["", "-1", "1.", ".5", "1e3", "01", " 1", "1,5", "NaN"]) {
      expect(() => parseAmount(bad, "EUR"), bad).toThrow(AmountError);
    }
    expect(() => parseAmount("1.001", "EUR")).toThrow(/decimals/);
    expect(() => parseAmount("1.5", "JPY")).toThrow(/decimals/);
    expect(() => parseAmount("99999999999999999999", "EUR")).toThrow(/too large/);
    expect(() => currencyExponent("eur")).toThrow(AmountError);
  });

  it("round-trips every amount (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e12, max: 1e12 }), fc.constantFrom("EUR", "JPY", "KWD"), (minor, currency) => {
        const text = formatAmount(minor, currency);
        expect(text).toMatch(/^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$/);
        if (minor >= 0) expect(parseAmount(text, currency)).toBe(minor);
      }),
    );
  });
});
