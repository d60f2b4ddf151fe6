/**
 * Amounts as Smart Router writes them: decimal strings in major units ("10", "22.99"), never floats.
 * Internally every amount is an integer count of the currency's minor unit.
 */

// ISO 4217 currencies whose minor unit is not the cent; everything else has two decimals.
const ZERO_DECIMAL = new Set([
  "BIF",
  "CLP",
  "DJF",
  "GNF",
  "ISK",
  "JPY",
  "KMF",
  "KRW",
  "PYG",
  "RWF",
  "UGX",
  "UYI",
  "VND",
  "VUV",
  "XAF",
  "XOF",
  "XPF",
]);
const THREE_DECIMAL = new Set(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"]);

const CURRENCY = /^[A-Z]{3}$/;
const DECIMAL = /^(0|[1-9][0-9]*)(?:\.([0-9]+))?$/;

/** Thrown for an amount or currency Smart Router would refuse. */
export class AmountError extends Error {
  readonly errorType: "request.validation.invalid-amount" | "request.validation.invalid-currency";
  constructor(errorType: AmountError["errorType"], message: string) {
    super(message);
    this.name = "AmountError";
    this.errorType = errorType;
  }
}

export function isCurrency(currency: string): boolean {
  return CURRENCY.test(currency);
}

/** Number of decimals of a currency's minor unit (JPY 0, EUR 2, KWD 3). */
export function currencyExponent(currency: string): number {
  if (!isCurrency(currency)) throw new AmountError("request.validation.invalid-currency", `unknown currency ${JSON.stringify(currency)}`);
  if (ZERO_DECIMAL.has(currency)) return 0;
  if (THREE_DECIMAL.has(currency)) return 3;
  return 2;
}

/** Parses a non-negative decimal string ("22.99") into minor units of `currency`; refuses more decimals than the currency has. */
export function parseAmount(text: string, currency: string): number {
  const exponent = currencyExponent(currency);
  const match = DECIMAL.exec(text);
  if (!match?.[1])
    throw new AmountError("request.validation.invalid-amount", `amount ${JSON.stringify(text)} is not a decimal string like "22.99"`);
  const fraction = (match[2] ?? "").replace(/0+$/, "");
  if (fraction.length > exponent) {
    throw new AmountError("request.validation.invalid-amount", `amount ${text} has more decimals than ${currency} allows (${exponent})`);
  }
  const minor = Number(match[1]) * 10 ** exponent + Number(fraction.padEnd(exponent, "0") || "0");
  if (!Number.isSafeInteger(minor)) throw new AmountError("request.validation.invalid-amount", `amount ${text} is too large`);
  return minor;
}

/**
 * How amounts are written. `shortest`: no trailing zeros ("10", "22.5", "-5"), the examples of smart-router.md §3.
 * `fixed`: every decimal of the currency's minor unit ("10.00", "22.50", "1500" for JPY, "1.500" for KWD).
 */
export type AmountFormat = "shortest" | "fixed";

/** Formats minor units in major units, "-" for negatives ("10", "22.99", "-0.5"; "10.00" with `fixed`). */
export function formatAmount(minor: number, currency: string, format: AmountFormat = "shortest"): string {
  if (!Number.isSafeInteger(minor)) throw new RangeError(`amount ${minor} is not a whole number of minor units`);
  const exponent = currencyExponent(currency);
  const sign = minor < 0 ? "-" : "";
  const digits = String(Math.abs(minor)).padStart(exponent + 1, "0");
  const whole = digits.slice(0, digits.length - exponent);
  const decimals = digits.slice(digits.length - exponent);
  const fraction = format === "fixed" ? decimals : decimals.replace(/0+$/, "");
  return fraction ? `${sign}${whole}.${fraction}` : `${sign}${whole}`;
}

/** Rewrites an amount the emulator wrote (possibly negative) in another format; "-10.5" EUR fixed is "-10.50". */
export function reformatAmount(text: string, currency: string, format: AmountFormat): string {
  const negative = text.startsWith("-");
  const minor = parseAmount(negative ? text.slice(1) : text, currency);
  return formatAmount(negative ? -minor : minor, currency, format);
}
