import type { AlertThresholds } from "../merchants/alert-thresholds";

/** Every kind of business alert (contract.md, `GET /v1/alerts`). */
export const ALERT_KINDS = [
  "authorized_not_captured",
  "apm_pending",
  "refunded_more_than_captured",
  "chargeback_after_fulfillment",
  "forged_delivery_spike",
  "smart_router_key_refused",
  "fulfillment_failing",
  "endpoint_disabled",
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** Kinds raised per transaction (the alert carries its `transaction_id`). */
export const TRANSACTION_ALERT_KINDS = [
  "authorized_not_captured",
  "apm_pending",
  "refunded_more_than_captured",
  "chargeback_after_fulfillment",
] as const satisfies readonly AlertKind[];
export type TransactionAlertKind = (typeof TRANSACTION_ALERT_KINDS)[number];

/** Kinds raised per merchant (`transaction_id` null). */
export const MERCHANT_ALERT_KINDS = [
  "forged_delivery_spike",
  "smart_router_key_refused",
  "fulfillment_failing",
  "endpoint_disabled",
] as const satisfies readonly AlertKind[];
export type MerchantAlertKind = (typeof MERCHANT_ALERT_KINDS)[number];

/** Statuses of money authorized and waiting for a capture (smart-router.md §3). */
export const AUTHORIZED_STATUSES = ["authorized", "pending-capture"] as const;
/** Statuses of a payment not settled yet: an APM waiting for the customer or its provider. */
export const PENDING_STATUSES = ["pending", "waiting"] as const;
/** Statuses of an open dispute, reached by Smart Router's chargeback events; `solved` (won) and `reversed` (lost) close it. */
export const OPEN_DISPUTE_STATUSES = ["chargeback-initiated", "retrieval-request", "fraud-notification"] as const;
/** The one payment type that is not an APM (smart-router.md §3: `card`, an APM name, …). */
export const CARD_PAYMENT_TYPE = "card";
/** The window of the forged-delivery count. */
export const FORGED_WINDOW_MS = 3_600_000;

/** What the per-transaction rules read of a transaction and its fulfilment. */
export interface TransactionFacts {
  merchantId: string;
  id: string;
  status: string;
  paymentType: string | null;
  currency: string;
  authorizedAmount: string;
  capturedAmount: string;
  refundedAmount: string;
  /** Smart Router's times (RFC 3339): the creation, and the last successful authorization result (null: none recorded). */
  createdAt: string;
  authorizedAt: string | null;
  fulfillmentStatus: string | null;
  fulfillmentDeliveredAt: string | null;
}

/** What the per-merchant rules read of a merchant. */
export interface MerchantFacts {
  merchantId: string;
  keyRefusedAt: string | null;
  keyRefusedReason: string | null;
  /** Deliveries of events Smart Router does not know, rejected within the last FORGED_WINDOW_MS. */
  forgedLastHour: number;
  /**
   * Fulfilment notifications failing: pending after at least one failed attempt, or given up for good (dead-lettered)
   * and not acknowledged by the merchant; the oldest one's request and error.
   */
  failingFulfillments: number;
  /** Of those, the ones given up for good: the alert stays open until they are delivered (redrive) or acknowledged. */
  deadLetteredFulfillments: number;
  failingSince: string | null;
  failingError: string | null;
  /** Endpoints disabled after 3 days of nothing but failures (src/endpoints): their ids, sorted. */
  disabledEndpoints: string[];
}

/** A condition's verdict: the alert's detail sentence while it holds, null once it does not. */
export type Verdict = string | null;

const has = (statuses: readonly string[], status: string) => statuses.includes(status);

/** "26 h" or "45 min": how long something has lasted, in the unit of its threshold. */
function elapsed(ms: number, unit: "h" | "min"): string {
  return unit === "h" ? `${Math.floor(ms / 3_600_000)} h` : `${Math.floor(ms / 60_000)} min`;
}

/** Milliseconds since an RFC 3339 time, or null for one that does not parse. */
function ageOf(time: string | null, now: number): number | null {
  const at = time === null ? Number.NaN : Date.parse(time);
  return Number.isNaN(at) ? null : now - at;
}

/** The condition of each per-transaction kind, from the transaction's facts alone. */
export const TRANSACTION_RULES: Record<TransactionAlertKind, (t: TransactionFacts, limits: AlertThresholds, now: number) => Verdict> = {
  authorized_not_captured: (t, limits, now) => {
    if (!has(AUTHORIZED_STATUSES, t.status)) return null;
    const age = ageOf(t.authorizedAt ?? t.createdAt, now);
    if (age === null || age < limits.authorized_uncaptured_hours * 3_600_000) return null;
    return (
      `${t.currency} ${t.authorizedAmount} authorized ${elapsed(age, "h")} ago and not captured (alert after ` +
      `${limits.authorized_uncaptured_hours} h): capture it, or void it to release the customer's funds, before the authorization expires.`
    );
  },
  apm_pending: (t, limits, now) => {
    if (!has(PENDING_STATUSES, t.status) || t.paymentType === null || t.paymentType === CARD_PAYMENT_TYPE) return null;
    const age = ageOf(t.createdAt, now);
    if (age === null || age < limits.apm_pending_minutes * 60_000) return null;
    return (
      `${t.paymentType} payment ${t.status} for ${elapsed(age, "min")} (alert after ${limits.apm_pending_minutes} min): ` +
      "the customer or the payment provider has not completed it; check it in the provider's dashboard before shipping anything."
    );
  },
  refunded_more_than_captured: (t) => {
    if (compareDecimals(t.refundedAmount, t.capturedAmount) <= 0) return null;
    return (
      `${t.currency} ${t.refundedAmount} refunded but only ${t.currency} ${t.capturedAmount} captured ` +
      `(${t.currency} ${subtractDecimals(t.refundedAmount, t.capturedAmount)} more): check the refunds in Smart Router before any further refund.`
    );
  },
  chargeback_after_fulfillment: (t) => {
    if (!has(OPEN_DISPUTE_STATUSES, t.status) || t.fulfillmentStatus !== "delivered") return null;
    return (
      `Dispute open (${t.status}) on a ${t.currency} ${t.capturedAmount} payment whose fulfilment was notified at ` +
      `${t.fulfillmentDeliveredAt ?? "an unknown time"}: answer it with the proof of delivery before the network's deadline.`
    );
  },
};

/** The condition of each per-merchant kind, from the merchant's facts alone. */
export const MERCHANT_RULES: Record<MerchantAlertKind, (m: MerchantFacts, limits: AlertThresholds, now: number) => Verdict> = {
  forged_delivery_spike: (m, limits) => {
    if (m.forgedLastHour < limits.forged_per_hour) return null;
    return (
      `${m.forgedLastHour} webhook deliveries in the last hour named events Smart Router does not know (alert at ` +
      `${limits.forged_per_hour}): the webhook credential may have leaked; rotate it (POST /admin/merchants/{id}/webhook-credential).`
    );
  },
  smart_router_key_refused: (m) => {
    if (m.keyRefusedAt === null) return null;
    return (
      `Smart Router refuses the merchant's secret key since ${m.keyRefusedAt} (${m.keyRefusedReason ?? "no detail"}): batch ` +
      "work, reconciliation and the event-log backstop are stopped; PATCH the merchant's smart_router credentials."
    );
  },
  fulfillment_failing: (m, limits, now) => {
    const age = ageOf(m.failingSince, now);
    if (m.failingFulfillments === 0 || age === null || age < limits.fulfillment_failing_minutes * 60_000) return null;
    const givenUp =
      m.deadLetteredFulfillments === 0
        ? ""
        : `; ${m.deadLetteredFulfillments} given up for good: redrive them (POST /admin/dead-letters/redrive) once it answers, or ` +
          "acknowledge this alert (POST /v1/alerts/{id}/acknowledge) if the orders were handled otherwise";
    return (
      `${m.failingFulfillments} fulfilment notification(s) failing, the oldest for ${elapsed(age, "min")} (alert after ` +
      `${limits.fulfillment_failing_minutes} min; last error: ${m.failingError ?? "none recorded"}): check the merchant's fulfillment_url endpoint${givenUp}.`
    );
  },
  endpoint_disabled: (m) => endpointDisabledVerdict(m),
};

/** The condition of `endpoint_disabled`: it holds while an endpoint stays disabled (re-enabled or deleted: resolved). */
export function endpointDisabledVerdict(m: Pick<MerchantFacts, "disabledEndpoints">): Verdict {
  if (m.disabledEndpoints.length === 0) return null;
  return (
    `${m.disabledEndpoints.length} endpoint(s) disabled after 3 days of nothing but failed deliveries (${m.disabledEndpoints.join(", ")}): ` +
    'their messages are kept; fix the receiver, then PATCH /v1/endpoints/{id} {"status":"enabled"} to send them in order.'
  );
}

/** A decimal string as an integer count of 10^-scale units: exact, never a float. */
function parseDecimal(value: string): { units: bigint; scale: number } {
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(value.trim());
  if (!match) throw new Error(`not a decimal amount: ${JSON.stringify(value)}`);
  const [, sign = "", whole = "0", fraction = ""] = match;
  return { units: BigInt(`${sign}${whole}${fraction}`), scale: fraction.length };
}

function aligned(a: string, b: string): { a: bigint; b: bigint; scale: number } {
  const x = parseDecimal(a);
  const y = parseDecimal(b);
  const scale = Math.max(x.scale, y.scale);
  return { a: x.units * 10n ** BigInt(scale - x.scale), b: y.units * 10n ** BigInt(scale - y.scale), scale };
}

/** -1, 0 or 1 as decimal string `a` is below, equal to or above `b` ("10" equals "10.00"). */
export function compareDecimals(a: string, b: string): -1 | 0 | 1 {
  const { a: x, b: y } = aligned(a, b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** `a - b` as a decimal string with the larger of their scales ("12.5" - "10" = "2.5"). */
export function subtractDecimals(a: string, b: string): string {
  const { a: x, b: y, scale } = aligned(a, b);
  const difference = x - y;
  const digits = (difference < 0n ? -difference : difference).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const fraction = scale > 0 ? `.${digits.slice(digits.length - scale)}` : "";
  return `${difference < 0n ? "-" : ""}${whole}${fraction}`;
}
