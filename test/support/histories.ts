import fc from "fast-check";

// Histories Smart Router could write for one transaction (the consumer's and the endpoints' property tests).

/**
 * Where a transaction can go next in Smart Router's status list (smart-router.md §3), never back onto the pre-capture
 * path once captured. Which steps append operations is left to the generator: the docs do not say.
 */
const NEXT: Record<string, readonly string[]> = {
  waiting: ["authorized", "failed", "in-review", "pending"],
  pending: ["authorized", "completed", "failed"],
  "in-review": ["authorized", "blocked"],
  authorized: ["completed", "voided", "failed", "pending-capture"],
  "pending-capture": ["completed", "failed"],
  completed: ["partially-refunded", "refunded", "chargeback-initiated", "retrieval-request", "fraud-notification"],
  "partially-refunded": ["partially-refunded", "refunded", "chargeback-initiated"],
  "retrieval-request": ["chargeback-initiated", "completed"],
  "chargeback-initiated": ["solved", "reversed"],
};
const CAPTURED = new Set([
  "completed",
  "partially-refunded",
  "refunded",
  "chargeback-initiated",
  "retrieval-request",
  "fraud-notification",
  "solved",
  "reversed",
]);
const OPERATION_FOR: Record<string, string> = {
  authorized: "authorization",
  completed: "capture",
  "partially-refunded": "refund",
  refunded: "refund",
  voided: "void",
  failed: "authorization",
  "chargeback-initiated": "chargeback",
  solved: "chargeback",
  reversed: "chargeback",
};

/** One step of a history: the next status (or the same one: a metadata or error edit), operations appended, time gap. */
export const step = fc.record({
  choice: fc.nat(),
  edit: fc.boolean(),
  operations: fc.constantFrom(0, 0, 1, 2),
  gapMs: fc.integer({ min: 1, max: 600_000 }),
  micros: fc.integer({ min: 0, max: 999 }),
  /** How Smart Router writes fired_at: milliseconds, microseconds, or with a UTC offset. */
  clock: fc.constantFrom("ms", "micros", "offset"),
  fixedAmounts: fc.boolean(),
});
export type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

function rfc3339(ms: number, micros: number, clock: Step["clock"]): string {
  const iso = new Date(ms).toISOString();
  if (clock === "micros") return `${iso.slice(0, -1)}${String(micros).padStart(3, "0")}Z`;
  if (clock === "offset") return `${new Date(ms + 2 * 3_600_000).toISOString().slice(0, -1)}+02:00`;
  return iso;
}

export interface Scripted {
  name: string;
  fired_at: string;
  transaction: Record<string, unknown>;
}

/** A history Smart Router could write for one transaction: snapshots with append-only operations and later fired_at. */
export function history(transactionId: string, projectId: string, steps: readonly Step[]): Scripted[] {
  let status = "waiting";
  let time = Date.parse("2026-11-01T10:00:00.000Z");
  const operations: Record<string, unknown>[] = [];
  const snapshots: Scripted[] = [];
  steps.forEach((s, index) => {
    const options = NEXT[status] ?? [];
    if (!s.edit && options.length > 0) status = options[s.choice % options.length] ?? status;
    time += s.gapMs;
    const firedAt = rfc3339(time, s.micros, s.clock);
    for (let k = 0; k < s.operations; k++) {
      operations.push({
        id: `tr_op_${transactionId.slice(3)}x${operations.length}`,
        transaction_id: transactionId,
        type: OPERATION_FOR[status] ?? "authorization",
        amount: s.fixedAmounts ? "40.00" : "40",
        currency: "EUR",
        is_attempt: k === 0 && s.operations === 2,
        has_failed: false,
        created_at: new Date(time).toISOString(),
      });
    }
    const captured = CAPTURED.has(status);
    const refunded = status === "refunded" ? "40" : status === "partially-refunded" ? "10.5" : "0";
    const money = (value: string) => (s.fixedAmounts && !value.includes(".") ? `${value}.00` : value);
    snapshots.push({
      name: `transaction.step${index}`,
      fired_at: firedAt,
      transaction: {
        id: transactionId,
        project_id: projectId,
        status,
        currency: "EUR",
        amount: money("40"),
        authorized_amount: money(status === "waiting" || status === "pending" || status === "in-review" ? "0" : "40"),
        captured_amount: money(captured ? "40" : "0"),
        refunded_amount: money(refunded),
        available_amount: money(captured ? (refunded === "0" ? "40" : refunded === "40" ? "0" : "29.5") : "0"),
        captured,
        metadata: { step: String(index) },
        error_code: s.edit ? `edit_${index}` : null,
        created_at: "2026-11-01T10:00:00.000Z",
        operations: [...operations],
      },
    });
  });
  return snapshots;
}
