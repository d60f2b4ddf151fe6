import { SandboxError } from "./errors.ts";
import { newId } from "./ids.ts";
import {
  type Behaviour,
  type CaptureMode,
  type CardScenario,
  type DisputeStage,
  type NextStep,
  type OperationType,
  type ProjectState,
  type ReviewDecision,
  TEST_CARDS,
  type TransactionRecord,
  type TransactionStatus,
} from "./model.ts";
import { formatAmount } from "./money.ts";
import type { Scheduler } from "./scheduler.ts";

/** How a payment is paid: a card number (test cards decide the outcome) or an APM by its payment_type name. */
export type PaymentMethod =
  /** `review`: the authorization is held in fraud review (`in-review`) until approved or blocked; null: no review. */
  | { kind: "card"; number: string; review: ReviewDecision | null }
  | { kind: "apm"; name: string; flow: "one-step" | "two-step"; outcome: "success" | "failure" };

/** A payment to create; `amount` in minor units of `currency`. */
export interface PaymentInput {
  amount: number;
  currency: string;
  name: string;
  metadata: Record<string, string>;
  capture: CaptureMode;
  method: PaymentMethod;
}

/** What an action did: the decline or the pending step is visible in the transaction too. */
export type ActionOutcome = "succeeded" | "declined" | "pending";

/** The fields `update` may change; omitted ones stay as they are. */
export interface TransactionEdit {
  /** Replaces the whole metadata map. */
  metadata?: Record<string, string>;
  error_code?: string | null;
  error_message?: string | null;
}

export interface PaymentEnvironment {
  now(): number;
  scheduler: Scheduler;
  /** Stores an event with the transaction's snapshot and hands it to the webhook sender. */
  fire(project: ProjectState, tx: TransactionRecord, name: string): void;
}

const DISPUTES: Partial<Record<CardScenario, DisputeStage[]>> = {
  "chargeback-lost": ["created", "lost"],
  "chargeback-won": ["created", "won"],
  "retrieval-request": ["retrieval-request"],
  "fraud-notification": ["fraud-notification"],
};

// Statuses a dispute step moves to; "solved" and "reversed" close a chargeback won and lost.
const DISPUTE_STATUS: Record<DisputeStage, TransactionStatus> = {
  created: "chargeback-initiated",
  won: "solved",
  lost: "reversed",
  "retrieval-request": "retrieval-request",
  "fraud-notification": "fraud-notification",
};

const DECLINED = { code: "card.declined", message: "The card was declined." };
const CAPTURE_DECLINED = { code: "gateway.declined", message: "The gateway declined the capture." };
const REFUND_DECLINED = { code: "gateway.declined", message: "The gateway declined the refund." };
const APM_DECLINED = { code: "payment.declined", message: "The payment was declined by the payment provider." };

/** The scenario of a card number: a test card's, else success for any number that passes the Luhn check. */
function cardScenario(rawNumber: string): CardScenario {
  const number = rawNumber.replace(/[\s-]/g, "");
  const known = TEST_CARDS[number];
  if (known) return known;
  if (!/^[0-9]{12,19}$/.test(number) || !luhn(number))
    throw new SandboxError(400, "request.card.invalid", "card number is not a valid card number");
  return "success";
}

function luhn(number: string): boolean {
  let sum = 0;
  for (let i = 0; i < number.length; i++) {
    let digit = Number(number.charAt(number.length - 1 - i));
    if (i % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}

function invalidState(tx: TransactionRecord, action: string): SandboxError {
  return new SandboxError(409, "gateway.invalid-state", `cannot ${action} transaction ${tx.id} in status ${tx.status}`);
}

function invalidAmount(message: string): SandboxError {
  return new SandboxError(400, "request.validation.invalid-amount", message);
}

/** The payment engine: every state change appends operations and fires its event, in the order Smart Router would. */
export function createPayments(env: PaymentEnvironment) {
  const timestamp = () => new Date(env.now()).toISOString();

  function addOperation(
    tx: TransactionRecord,
    type: OperationType,
    amount: number,
    step: { result: false } | { result: true; failure?: { code: string; message: string }; metadata?: Record<string, string> },
  ): void {
    const failed = step.result && step.failure !== undefined;
    tx.operations.push({
      id: newId("tr_op"),
      transaction_id: tx.id,
      type,
      amount: formatAmount(amount, tx.currency),
      currency: tx.currency,
      is_attempt: !step.result,
      has_failed: failed,
      // Results that move money count in the books; attempts, failures and notices do not.
      is_accountable: step.result && !failed && amount !== 0 && (type === "capture" || type === "refund" || type === "chargeback"),
      gateway_operation_id: step.result ? newId("op") : null,
      error_code: step.result ? (step.failure?.code ?? null) : null,
      error_message: step.result ? (step.failure?.message ?? null) : null,
      payment_type: tx.paymentType,
      metadata: step.result ? { ...step.metadata } : {},
      created_at: timestamp(),
    });
  }

  // Most steps are an attempt immediately followed by its result.
  function pair(
    tx: TransactionRecord,
    type: OperationType,
    amount: number,
    failure?: { code: string; message: string },
    metadata?: Record<string, string>,
  ): void {
    addOperation(tx, type, amount, { result: false });
    addOperation(tx, type, amount, { result: true, ...(failure ? { failure } : {}), ...(metadata ? { metadata } : {}) });
  }

  function fail(project: ProjectState, tx: TransactionRecord, failure: { code: string; message: string }): void {
    tx.status = "failed";
    tx.errorCode = failure.code;
    tx.errorMessage = failure.message;
    env.fire(project, tx, "transaction.failed");
  }

  function markAuthorized(tx: TransactionRecord): void {
    tx.authorized = true;
    tx.authorizedAmount = tx.amount;
    tx.authorizedAt = timestamp();
    tx.status = "authorized";
  }

  function markCaptured(project: ProjectState, tx: TransactionRecord, amount: number): void {
    tx.captured = true;
    tx.capturedAmount = amount;
    tx.capturedAt = timestamp();
    tx.status = "completed";
    env.fire(project, tx, "transaction.captured");
    if (tx.behaviour.kind === "card") {
      const stages = DISPUTES[tx.behaviour.scenario];
      if (stages) setNext(project, tx, { kind: "dispute", stages: [...stages] });
    }
  }

  function applyRefund(project: ProjectState, tx: TransactionRecord, amount: number): void {
    tx.refundedAmount += amount;
    tx.refunded = true;
    tx.refundedAt = timestamp();
    tx.status = tx.refundedAmount === tx.capturedAmount ? "refunded" : "partially-refunded";
    env.fire(project, tx, "transaction.refunded");
  }

  function delayOf(project: ProjectState, next: NextStep): number {
    const delays = project.settings.delays;
    if (next.kind === "apm-completion") return delays.apm_ms;
    if (next.kind === "refund-settlement") return delays.refund_ms;
    // A fraud review is a manual decision like a dispute step: it takes the dispute delay.
    return delays.dispute_ms;
  }

  function setNext(project: ProjectState, tx: TransactionRecord, next: NextStep | null): void {
    env.scheduler.cancel(tx.nextTimer);
    tx.nextTimer = null;
    tx.next = next;
    if (next && project.settings.auto_advance) {
      tx.nextTimer = env.scheduler.after(project.id, delayOf(project, next), () => {
        tx.nextTimer = null;
        advance(project, tx);
      });
    }
  }

  function authorizeCard(project: ProjectState, tx: TransactionRecord, scenario: CardScenario, review: ReviewDecision | null): void {
    if (scenario === "three-d-s") {
      pair(tx, "three_d_s_check", tx.amount);
      tx.threeDSStatus = "success";
    }
    if (scenario === "declined") {
      pair(tx, "authorization", tx.amount, DECLINED);
      fail(project, tx, DECLINED);
      return;
    }
    pair(tx, "authorization", tx.amount);
    markAuthorized(tx);
    if (review !== null) {
      // The gateway authorized, then fraud review holds the payment: the operation and authorized_at are on record,
      // only the status says "not yet". The review's end is a status change alone (no operation, no timestamp).
      tx.status = "in-review";
      env.fire(project, tx, "transaction.in-review");
      setNext(project, tx, { kind: "review", decision: review });
      return;
    }
    env.fire(project, tx, "transaction.authorized");
  }

  function capturable(tx: TransactionRecord): boolean {
    // A blocked payment keeps its authorization on record, but nothing may follow the block.
    return tx.authorized && !tx.captured && !tx.voided && tx.next === null && tx.status !== "blocked";
  }

  /** Captures `amount` (default: all of it) of an authorized transaction. */
  function capture(project: ProjectState, tx: TransactionRecord, amount?: number): ActionOutcome {
    if (!capturable(tx)) throw invalidState(tx, "capture");
    const value = amount ?? tx.authorizedAmount;
    if (value <= 0 || value > tx.authorizedAmount) {
      throw invalidAmount(`capture amount must be more than 0 and at most the authorized amount`);
    }
    if (tx.behaviour.kind === "card" && tx.behaviour.scenario === "capture-fails") {
      pair(tx, "capture", value, CAPTURE_DECLINED);
      fail(project, tx, CAPTURE_DECLINED);
      return "declined";
    }
    pair(tx, "capture", value);
    markCaptured(project, tx, value);
    return "succeeded";
  }

  /** Creates a transaction and runs it as far as it goes without waiting. */
  function create(project: ProjectState, input: PaymentInput): TransactionRecord {
    if (input.amount <= 0) throw invalidAmount("amount must be more than 0");
    let behaviour: Behaviour;
    if (input.method.kind === "card") {
      behaviour = { kind: "card", scenario: cardScenario(input.method.number), capture: input.capture };
    } else {
      if (input.method.flow === "one-step" && input.capture === "manual") {
        throw new SandboxError(
          400,
          "request.validation.error",
          "a one-step APM captures at once: capture must be auto (use flow two-step)",
        );
      }
      behaviour = { kind: "apm", flow: input.method.flow, outcome: input.method.outcome, capture: input.capture };
    }
    const tx: TransactionRecord = {
      id: newId("tr"),
      projectId: project.id,
      invoiceId: newId("iv"),
      cardId: behaviour.kind === "card" ? newId("card") : null,
      gatewayConfigurationId: project.gatewayConfigurationId,
      paymentType: input.method.kind === "card" ? "card" : input.method.name,
      name: input.name,
      currency: input.currency,
      metadata: { ...input.metadata },
      sandbox: project.sandbox,
      status: behaviour.kind === "card" ? "waiting" : "pending",
      errorCode: null,
      errorMessage: null,
      threeDSStatus: null,
      amount: input.amount,
      authorizedAmount: 0,
      capturedAmount: 0,
      refundedAmount: 0,
      voidedAmount: 0,
      authorized: false,
      captured: false,
      voided: false,
      refunded: false,
      chargedback: false,
      createdAt: timestamp(),
      authorizedAt: null,
      capturedAt: null,
      refundedAt: null,
      voidedAt: null,
      chargedbackAt: null,
      operations: [],
      behaviour,
      next: null,
      nextTimer: null,
    };
    project.transactionIndex.set(tx.id, project.transactions.length);
    project.transactions.push(tx);

    if (behaviour.kind === "apm") {
      // The customer is sent to the APM: the attempt is on record, its result arrives later.
      addOperation(tx, behaviour.flow === "one-step" ? "capture" : "authorization", tx.amount, { result: false });
      env.fire(project, tx, "transaction.requested");
      setNext(project, tx, { kind: "apm-completion" });
      return tx;
    }
    env.fire(project, tx, "transaction.requested");
    authorizeCard(project, tx, behaviour.scenario, input.method.kind === "card" ? input.method.review : null);
    if (tx.status === "authorized" && behaviour.capture === "auto") capture(project, tx);
    return tx;
  }

  /** Settles a pending APM payment with the given outcome (`failure` may carry the error to report). */
  function complete(
    project: ProjectState,
    tx: TransactionRecord,
    outcome: "success" | "failure",
    failure: { code: string; message: string } = APM_DECLINED,
  ): ActionOutcome {
    if (tx.behaviour.kind !== "apm" || tx.next?.kind !== "apm-completion") throw invalidState(tx, "complete or fail");
    const { flow, capture: mode } = tx.behaviour;
    setNext(project, tx, null);
    const type = flow === "one-step" ? "capture" : "authorization";
    if (outcome === "failure") {
      addOperation(tx, type, tx.amount, { result: true, failure });
      fail(project, tx, failure);
      return "declined";
    }
    addOperation(tx, type, tx.amount, { result: true });
    markAuthorized(tx);
    if (flow === "one-step") {
      // Capture at once: no separate authorization event, the first good news is `transaction.captured`.
      markCaptured(project, tx, tx.amount);
      return "succeeded";
    }
    env.fire(project, tx, "transaction.authorized");
    if (mode === "auto") return capture(project, tx);
    return "succeeded";
  }

  /** Voids an authorization that was not captured. */
  function voidTransaction(project: ProjectState, tx: TransactionRecord): ActionOutcome {
    if (!capturable(tx)) throw invalidState(tx, "void");
    pair(tx, "void", tx.authorizedAmount);
    tx.voided = true;
    tx.voidedAmount = tx.authorizedAmount;
    tx.voidedAt = timestamp();
    tx.status = "voided";
    env.fire(project, tx, "transaction.voided");
    return "succeeded";
  }

  /** Refunds `amount` (default: all that is still available). APM refunds are asynchronous. */
  function refund(project: ProjectState, tx: TransactionRecord, amount?: number): ActionOutcome {
    const available = tx.capturedAmount - tx.refundedAmount;
    if (!tx.captured || available <= 0 || tx.next?.kind === "refund-settlement") throw invalidState(tx, "refund");
    const value = amount ?? available;
    if (value <= 0 || value > available) throw invalidAmount(`refund amount must be more than 0 and at most the available amount`);
    if (tx.behaviour.kind === "card" && tx.behaviour.scenario === "refund-declined") {
      // Smart Router answers the refund call with the decline; no event name exists for it.
      pair(tx, "refund", value, REFUND_DECLINED);
      return "declined";
    }
    if (tx.behaviour.kind === "apm") {
      addOperation(tx, "refund", value, { result: false });
      env.fire(project, tx, "transaction.operation.refund.pending");
      setNext(project, tx, { kind: "refund-settlement", amount: value });
      return "pending";
    }
    pair(tx, "refund", value);
    applyRefund(project, tx, value);
    return "succeeded";
  }

  /** Runs the step the transaction waits for, now: APM completion, refund settlement or the next dispute step. */
  function advance(project: ProjectState, tx: TransactionRecord): ActionOutcome {
    const next = tx.next;
    if (next === null) throw new SandboxError(409, "gateway.invalid-state", `transaction ${tx.id} has no pending step`);
    if (next.kind === "apm-completion") {
      return complete(project, tx, tx.behaviour.kind === "apm" ? tx.behaviour.outcome : "success");
    }
    if (next.kind === "refund-settlement") {
      setNext(project, tx, null);
      addOperation(tx, "refund", next.amount, { result: true });
      applyRefund(project, tx, next.amount);
      return "succeeded";
    }
    if (next.kind === "review") {
      setNext(project, tx, null);
      if (next.decision === "block") {
        tx.status = "blocked";
        env.fire(project, tx, "transaction.blocked");
        return "declined";
      }
      tx.status = "authorized";
      env.fire(project, tx, "transaction.authorized");
      // From here on the payment goes on as if it had never been reviewed.
      if (tx.behaviour.capture === "auto") return capture(project, tx);
      return "succeeded";
    }
    const [stage, ...rest] = next.stages;
    setNext(project, tx, rest.length > 0 ? { kind: "dispute", stages: rest } : null);
    if (stage === undefined) return "succeeded";
    // readings.dispute_operations "none": the other reading of the docs' silence, a dispute as a status change only.
    const withOperations = project.settings.readings.dispute_operations === "pair";
    if (withOperations) {
      // The chargeback takes the captured amount back; a won dispute returns it; a loss or a notice moves nothing more.
      const amount = stage === "created" ? -tx.capturedAmount : stage === "won" ? tx.capturedAmount : 0;
      pair(tx, "chargeback", amount, undefined, { stage });
    }
    if (stage === "created") {
      tx.chargedback = true;
      if (withOperations) tx.chargedbackAt = timestamp();
    }
    tx.status = DISPUTE_STATUS[stage];
    env.fire(project, tx, `transaction.chargeback.${stage}`);
    return "succeeded";
  }

  /** Edits metadata and error fields in place: `transaction.updated`, no operation, no timestamp moved. */
  function update(project: ProjectState, tx: TransactionRecord, edit: TransactionEdit): void {
    if (edit.metadata !== undefined) tx.metadata = { ...edit.metadata };
    if (edit.error_code !== undefined) tx.errorCode = edit.error_code;
    if (edit.error_message !== undefined) tx.errorMessage = edit.error_message;
    env.fire(project, tx, "transaction.updated");
  }

  return { create, capture, void: voidTransaction, refund, complete, advance, update };
}

export type Payments = ReturnType<typeof createPayments>;
