import type { GcraState } from "./gcra.ts";
import { type AmountFormat, formatAmount, reformatAmount } from "./money.ts";
import type { TimerHandle } from "./scheduler.ts";
import type { ProjectSettings } from "./settings.ts";

/** Transaction statuses, exactly as smart-router.md §3 lists them. */
export const TRANSACTION_STATUSES = [
  "waiting",
  "pending",
  "authorized",
  "pending-capture",
  "completed",
  "failed",
  "voided",
  "refunded",
  "partially-refunded",
  "in-review",
  "blocked",
  "retrieval-request",
  "fraud-notification",
  "chargeback-initiated",
  "solved",
  "reversed",
] as const;
export type TransactionStatus = (typeof TRANSACTION_STATUSES)[number];

export type OperationType = "three_d_s_check" | "authorization" | "capture" | "void" | "refund" | "chargeback";

/** A TransactionOperation as the API shows it; immutable once appended. */
export interface TransactionOperation {
  id: string;
  transaction_id: string;
  type: OperationType;
  amount: string;
  currency: string;
  is_attempt: boolean;
  has_failed: boolean;
  is_accountable: boolean;
  gateway_operation_id: string | null;
  error_code: string | null;
  error_message: string | null;
  payment_type: string;
  metadata: Record<string, string>;
  created_at: string;
}

/** What a test card does (smart-router.md §7). */
export type CardScenario =
  | "success"
  | "declined"
  | "capture-fails"
  | "chargeback-lost"
  | "chargeback-won"
  | "retrieval-request"
  | "fraud-notification"
  | "refund-declined"
  | "three-d-s";

export const TEST_CARDS: Readonly<Record<string, CardScenario>> = {
  "4242424242424242": "success",
  "4000000000000002": "declined",
  "4000000000000010": "capture-fails",
  "4000000000000069": "chargeback-lost",
  "4000000000000200": "chargeback-won",
  "4000000000000309": "retrieval-request",
  "4000000000004004": "fraud-notification",
  "4000000000000077": "refund-declined",
  "4000000000000101": "three-d-s",
};

/** One step of a dispute, named by its event (`transaction.chargeback.<stage>`). */
export type DisputeStage = "created" | "won" | "lost" | "retrieval-request" | "fraud-notification";

export type CaptureMode = "auto" | "manual";

/** How a fraud review of a card authorization ends: `approve` releases it as authorized, `block` stops it for good. */
export type ReviewDecision = "approve" | "block";

export type Behaviour =
  | { kind: "card"; scenario: CardScenario; capture: CaptureMode }
  | { kind: "apm"; flow: "one-step" | "two-step"; outcome: "success" | "failure"; capture: CaptureMode };

/** The asynchronous step a transaction waits for: run by a timer (auto_advance) or by `/advance`. */
export type NextStep =
  | { kind: "apm-completion" }
  | { kind: "refund-settlement"; amount: number }
  | { kind: "dispute"; stages: DisputeStage[] }
  | { kind: "review"; decision: ReviewDecision };

/** A transaction as the emulator keeps it: amounts in minor units. */
export interface TransactionRecord {
  id: string;
  projectId: string;
  invoiceId: string;
  cardId: string | null;
  gatewayConfigurationId: string;
  paymentType: string;
  name: string;
  currency: string;
  metadata: Record<string, string>;
  sandbox: boolean;
  status: TransactionStatus;
  errorCode: string | null;
  errorMessage: string | null;
  threeDSStatus: string | null;
  amount: number;
  authorizedAmount: number;
  capturedAmount: number;
  refundedAmount: number;
  voidedAmount: number;
  authorized: boolean;
  captured: boolean;
  voided: boolean;
  refunded: boolean;
  chargedback: boolean;
  createdAt: string;
  authorizedAt: string | null;
  capturedAt: string | null;
  refundedAt: string | null;
  voidedAt: string | null;
  chargedbackAt: string | null;
  operations: TransactionOperation[];
  behaviour: Behaviour;
  next: NextStep | null;
  nextTimer: TimerHandle | null;
}

/** The transaction as the API shows it (smart-router.md §3). */
export interface TransactionView {
  id: string;
  project_id: string;
  invoice_id: string;
  customer_id: string | null;
  card_id: string | null;
  token_id: string | null;
  gateway_configuration_id: string;
  gateway_name: string;
  payment_type: string;
  name: string;
  status: TransactionStatus;
  currency: string;
  amount: string;
  authorized_amount: string;
  captured_amount: string;
  refunded_amount: string;
  available_amount: string;
  voided_amount: string;
  metadata: Record<string, string>;
  sandbox: boolean;
  authorized: boolean;
  captured: boolean;
  voided: boolean;
  refunded: boolean;
  chargedback: boolean;
  error_code: string | null;
  error_message: string | null;
  three_d_s_status: string | null;
  created_at: string;
  authorized_at: string | null;
  captured_at: string | null;
  refunded_at: string | null;
  voided_at: string | null;
  chargedback_at: string | null;
  operations: TransactionOperation[] | null;
}

export interface EventObject {
  id: string;
  project_id: string;
  name: string;
  sandbox: boolean;
  fired_at: string;
  data: { name: string; sandbox: boolean; transaction: TransactionView };
}

/**
 * A copy detached from the record, so later changes never reach a stored event snapshot. Amounts are written
 * `shortest` unless told: stored snapshots keep that form and are rewritten on the way out (`withAmountFormat`).
 */
export function presentTransaction(tx: TransactionRecord, withOperations: boolean, format: AmountFormat = "shortest"): TransactionView {
  const money = (minor: number) => formatAmount(minor, tx.currency, format);
  return {
    id: tx.id,
    project_id: tx.projectId,
    invoice_id: tx.invoiceId,
    customer_id: null,
    card_id: tx.cardId,
    token_id: null,
    gateway_configuration_id: tx.gatewayConfigurationId,
    gateway_name: "sandbox",
    payment_type: tx.paymentType,
    name: tx.name,
    status: tx.status,
    currency: tx.currency,
    amount: money(tx.amount),
    authorized_amount: money(tx.authorizedAmount),
    captured_amount: money(tx.capturedAmount),
    refunded_amount: money(tx.refundedAmount),
    available_amount: money(tx.capturedAmount - tx.refundedAmount),
    voided_amount: money(tx.voidedAmount),
    metadata: { ...tx.metadata },
    sandbox: tx.sandbox,
    authorized: tx.authorized,
    captured: tx.captured,
    voided: tx.voided,
    refunded: tx.refunded,
    chargedback: tx.chargedback,
    error_code: tx.errorCode,
    error_message: tx.errorMessage,
    three_d_s_status: tx.threeDSStatus,
    created_at: tx.createdAt,
    authorized_at: tx.authorizedAt,
    captured_at: tx.capturedAt,
    refunded_at: tx.refundedAt,
    voided_at: tx.voidedAt,
    chargedback_at: tx.chargedbackAt,
    operations: withOperations
      ? tx.operations.map((operation) => ({
          ...operation,
          amount: format === "shortest" ? operation.amount : reformatAmount(operation.amount, operation.currency, format),
          metadata: { ...operation.metadata },
        }))
      : null,
  };
}

/** A stored snapshot (amounts `shortest`) as a project reading `format` shows it; the snapshot itself is left alone. */
export function withAmountFormat(view: TransactionView, format: AmountFormat): TransactionView {
  if (format === "shortest") return view;
  // A scripted snapshot is taken as given (control.ts): an amount it lacks stays absent rather than failing the read.
  const money = (text: string): string => (typeof text === "string" ? reformatAmount(text, view.currency, format) : text);
  return {
    ...view,
    amount: money(view.amount),
    authorized_amount: money(view.authorized_amount),
    captured_amount: money(view.captured_amount),
    refunded_amount: money(view.refunded_amount),
    available_amount: money(view.available_amount),
    voided_amount: money(view.voided_amount),
    operations:
      view.operations?.map((operation) => ({ ...operation, amount: reformatAmount(operation.amount, operation.currency, format) })) ?? null,
  };
}

/** An event as `GET /events/{id}` answers it: the stored event, amounts in the project's format. */
export function presentEvent(event: EventObject, format: AmountFormat): EventObject {
  if (format === "shortest") return event;
  return { ...event, data: { ...event.data, transaction: withAmountFormat(event.data.transaction, format) } };
}

/** One item of `GET /events`: the full event, or less of it, as the project's `events_list_items` reading says. */
export type EventListItem = Omit<EventObject, "data"> & { data?: EventObject["data"] };

export function presentEventListItem(
  event: EventObject,
  format: AmountFormat,
  items: "full" | "operations-null" | "no-data",
): EventListItem {
  const full = presentEvent(event, format);
  if (items === "full") return full;
  const { data, ...bare } = full;
  if (items === "no-data") return bare;
  return { ...bare, data: { ...data, transaction: { ...data.transaction, operations: null } } };
}

export const BUCKETS = ["primary", "events", "sandbox"] as const;
export type BucketName = (typeof BUCKETS)[number];

export interface BucketCounters {
  /** Requests that reached this bucket (authenticated), whatever the answer. */
  requests: number;
  /** Answered 2xx. */
  succeeded: number;
  /** Answered 4xx by the API itself (not found, bad pagination, …), 429s excluded. */
  client_errors: number;
  /** Refused 429 because the bucket was empty. */
  rate_limited: number;
  /** Answered 429 by chaos, not by the bucket. */
  injected_429: number;
  /** Answered 503 by chaos. */
  injected_5xx: number;
}

export interface DeliveryCounters {
  /** Deliveries created (one per event and endpoint, plus duplicates and forgeries; dropped ones excluded). */
  scheduled: number;
  attempts: number;
  succeeded: number;
  /** Attempts answered with a non-2xx status. */
  failed: number;
  /** Attempts that got no answer: network error or timeout. */
  network_errors: number;
  retries: number;
  /** Deliveries abandoned after max_attempts. */
  gave_up: number;
  dropped: number;
  duplicated: number;
  forged: number;
}

export interface Counters {
  api: Record<BucketName, BucketCounters>;
  /** Requests naming this project with a wrong secret key. */
  auth_failures: number;
  deliveries: DeliveryCounters;
}

export function newCounters(): Counters {
  const bucket = (): BucketCounters => ({ requests: 0, succeeded: 0, client_errors: 0, rate_limited: 0, injected_429: 0, injected_5xx: 0 });
  return {
    api: { primary: bucket(), events: bucket(), sandbox: bucket() },
    auth_failures: 0,
    deliveries: {
      scheduled: 0,
      attempts: 0,
      succeeded: 0,
      failed: 0,
      network_errors: 0,
      retries: 0,
      gave_up: 0,
      dropped: 0,
      duplicated: 0,
      forged: 0,
    },
  };
}

/** A registered webhook endpoint. */
export interface WebhookEndpoint {
  id: string;
  /** As registered, credentials included. */
  url: string;
  /** Where deliveries go: `url` without its credentials. */
  target: string;
  /** `Basic …` built from the credentials embedded in `url`, if any. */
  authorization: string | null;
  /** Event-name whitelist; null means every event. */
  events: string[] | null;
  created_at: string;
}

/** One line of a project's delivery log. */
export interface DeliveryLogEntry {
  delivery_id: string;
  attempt_id: string | null;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  attempt: number;
  /** HTTP status of the answer; 0 for a network error or timeout; null when dropped. */
  status: number | null;
  outcome: "succeeded" | "failed" | "network-error" | "dropped";
  forged: boolean;
  duplicate: boolean;
  at: string;
}

export interface ProjectState {
  id: string;
  secretKey: string;
  sandbox: boolean;
  createdAt: string;
  gatewayConfigurationId: string;
  settings: ProjectSettings;
  buckets: Partial<Record<BucketName, GcraState>>;
  transactions: TransactionRecord[];
  transactionIndex: Map<string, number>;
  events: EventObject[];
  eventIndex: Map<string, number>;
  /**
   * Per event (same index), the clock time it was fired at, never decreasing: the read lag counts from it. Kept
   * apart from `fired_at`, which may run a few ms ahead of the clock to stay strictly increasing.
   */
  eventClock: number[];
  /** Scripted events that answer `GET /events/{id}` this many real ms late (a slow read, for race tests). */
  eventReadDelays: Map<string, number>;
  /** `fired_at` of the latest event in ms, so the next one can be made strictly later. */
  lastFiredAt: number;
  endpoints: WebhookEndpoint[];
  deliveryLog: DeliveryLogEntry[];
  counters: Counters;
}
