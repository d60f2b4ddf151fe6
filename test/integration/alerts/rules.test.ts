import { describe, expect, it } from "vitest";
import {
  compareDecimals,
  MERCHANT_RULES,
  type MerchantFacts,
  subtractDecimals,
  TRANSACTION_RULES,
  type TransactionFacts,
} from "../../../src/alerts/rules";
import { ALERT_DEFAULTS, alertThresholds } from "../../../src/merchants/alert-thresholds";

/** The pure rules of src/alerts/rules.ts, without D1: what each condition says for a record. */

const NOW = Date.parse("2026-11-02T12:00:00.000Z");
const limits = alertThresholds(null);

const transaction = (overrides: Partial<TransactionFacts> = {}): TransactionFacts => ({
  merchantId: "m",
  id: "tr_1",
  status: "authorized",
  paymentType: "card",
  currency: "EUR",
  authorizedAmount: "10",
  capturedAmount: "0",
  refundedAmount: "0",
  createdAt: "2026-11-01T10:00:00.000Z",
  authorizedAt: null,
  fulfillmentStatus: null,
  fulfillmentDeliveredAt: null,
  ...overrides,
});

const merchant = (overrides: Partial<MerchantFacts> = {}): MerchantFacts => ({
  merchantId: "m",
  keyRefusedAt: null,
  keyRefusedReason: null,
  forgedLastHour: 0,
  failingFulfillments: 0,
  deadLetteredFulfillments: 0,
  failingSince: null,
  failingError: null,
  disabledEndpoints: [],
  ...overrides,
});

describe("exact decimal amounts", () => {
  it("compares and subtracts decimal strings of any scale without floats", () => {
    expect(compareDecimals("10", "10.00")).toBe(0);
    expect(compareDecimals("10.01", "10.1")).toBe(-1);
    expect(compareDecimals("0.3", "0.1")).toBe(1);
    expect(compareDecimals("123456789012345678901234.5", "123456789012345678901234.49")).toBe(1);
    expect(subtractDecimals("0.3", "0.1")).toBe("0.2");
    expect(subtractDecimals("12.50", "10")).toBe("2.50");
    expect(subtractDecimals("1.005", "1.5")).toBe("-0.495");
    expect(subtractDecimals("1500", "1500")).toBe("0");
    expect(() => compareDecimals("1e3", "1")).toThrow(/not a decimal amount/);
  });
});

describe("transaction rules", () => {
  it("authorized_not_captured holds from the authorization's age on, in authorized and pending-capture only", () => {
    const rule = TRANSACTION_RULES.authorized_not_captured;
    // Created 26 h before NOW, authorized 23 h before: not due, the authorization time counts.
    expect(rule(transaction({ authorizedAt: "2026-11-01T13:00:00+00:00" }), limits, NOW)).toBeNull();
    expect(rule(transaction(), limits, NOW)).toMatch(/^EUR 10 authorized 26 h ago and not captured \(alert after 24 h\)/);
    expect(rule(transaction({ status: "pending-capture" }), limits, NOW)).not.toBeNull();
    expect(rule(transaction({ status: "completed" }), limits, NOW)).toBeNull();
    expect(rule(transaction(), alertThresholds({ authorized_uncaptured_hours: 48 }), NOW)).toBeNull();
  });

  it("apm_pending holds for a pending or waiting payment of any type but card past its minutes", () => {
    const rule = TRANSACTION_RULES.apm_pending;
    const apm = transaction({ status: "pending", paymentType: "ideal", createdAt: "2026-11-02T10:30:00.000Z" });
    expect(rule(apm, limits, NOW)).toMatch(/^ideal payment pending for 90 min \(alert after 60 min\)/);
    expect(rule({ ...apm, paymentType: "card" }, limits, NOW)).toBeNull();
    expect(rule({ ...apm, paymentType: null }, limits, NOW)).toBeNull();
    expect(rule({ ...apm, status: "completed" }, limits, NOW)).toBeNull();
    expect(rule(apm, alertThresholds({ apm_pending_minutes: 120 }), NOW)).toBeNull();
  });

  it("refunded_more_than_captured compares the amounts exactly", () => {
    const rule = TRANSACTION_RULES.refunded_more_than_captured;
    expect(rule(transaction({ capturedAmount: "10.00", refundedAmount: "10" }), limits, NOW)).toBeNull();
    expect(rule(transaction({ capturedAmount: "10.00", refundedAmount: "10.001" }), limits, NOW)).toMatch(/\(EUR 0\.001 more\)/);
  });

  it("chargeback_after_fulfillment holds while a dispute is open on a delivered fulfilment", () => {
    const rule = TRANSACTION_RULES.chargeback_after_fulfillment;
    const disputed = transaction({
      status: "chargeback-initiated",
      capturedAmount: "10",
      fulfillmentStatus: "delivered",
      fulfillmentDeliveredAt: "2026-11-01T10:00:05.000Z",
    });
    expect(rule(disputed, limits, NOW)).toMatch(/^Dispute open \(chargeback-initiated\)/);
    expect(rule({ ...disputed, status: "retrieval-request" }, limits, NOW)).not.toBeNull();
    expect(rule({ ...disputed, status: "solved" }, limits, NOW)).toBeNull();
    expect(rule({ ...disputed, fulfillmentStatus: "pending" }, limits, NOW)).toBeNull();
  });
});

describe("merchant rules", () => {
  it("forged_delivery_spike holds at the threshold", () => {
    expect(MERCHANT_RULES.forged_delivery_spike(merchant({ forgedLastHour: ALERT_DEFAULTS.forged_per_hour - 1 }), limits, NOW)).toBeNull();
    expect(MERCHANT_RULES.forged_delivery_spike(merchant({ forgedLastHour: ALERT_DEFAULTS.forged_per_hour }), limits, NOW)).not.toBeNull();
  });

  it("smart_router_key_refused holds while the refusal is recorded", () => {
    expect(MERCHANT_RULES.smart_router_key_refused(merchant(), limits, NOW)).toBeNull();
    expect(
      MERCHANT_RULES.smart_router_key_refused(merchant({ keyRefusedAt: "2026-11-02T11:00:00.000Z", keyRefusedReason: "401" }), limits, NOW),
    ).toMatch(/since 2026-11-02T11:00:00\.000Z \(401\)/);
  });

  it("fulfillment_failing holds once the oldest failing notification is older than the threshold", () => {
    const failing = merchant({ failingFulfillments: 2, failingSince: "2026-11-02T11:20:00.000Z", failingError: "merchant answered 500" });
    expect(MERCHANT_RULES.fulfillment_failing(failing, limits, NOW)).toMatch(
      /^2 fulfilment notification\(s\) failing, the oldest for 40 min/,
    );
    expect(MERCHANT_RULES.fulfillment_failing({ ...failing, failingSince: "2026-11-02T11:45:00.000Z" }, limits, NOW)).toBeNull();
    expect(MERCHANT_RULES.fulfillment_failing({ ...failing, failingFulfillments: 0 }, limits, NOW)).toBeNull();
  });

  it("fulfillment_failing names the notifications given up for good, and the two ways to close it", () => {
    const deadLettered = merchant({
      failingFulfillments: 1,
      deadLetteredFulfillments: 1,
      failingSince: "2026-10-30T12:00:00.000Z",
      failingError: "merchant answered 500",
    });
    expect(MERCHANT_RULES.fulfillment_failing(deadLettered, limits, NOW)).toMatch(
      /; 1 given up for good: redrive them \(POST \/admin\/dead-letters\/redrive\) .* acknowledge this alert \(POST \/v1\/alerts\/\{id\}\/acknowledge\)/,
    );
  });
});
