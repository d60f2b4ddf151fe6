import fc from "fast-check";
import { readingNames } from "../../sandbox/readings";
import { type Shop, TEST_CARDS } from "./sandbox";

/** A payment's life as a merchant's systems would drive it in Smart Router. */
export const lifecycle = fc.record({
  method: fc.oneof(
    fc.record({
      card: fc.constantFrom(...TEST_CARDS),
    }),
    fc.record({
      apm: fc.constantFrom("sandbox-apm", "ideal", "paypal"),
      flow: fc.constantFrom("one-step", "two-step"),
      outcome: fc.constantFrom("success", "failure"),
    }),
  ),
  capture: fc.constantFrom("auto", "manual"),
  afterAuthorization: fc.constantFrom("capture", "partial-capture", "void", "nothing"),
  refunds: fc.array(fc.constantFrom("partial", "full"), { maxLength: 2 }),
  /** A fraud review first (cards only): status-only changes in-review → authorized or blocked. */
  review: fc.constantFrom(undefined, "approve", "block"),
  /** Metadata edits after the payment's steps: status-only changes that append nothing and move no timestamp. */
  edits: fc.nat({ max: 2 }),
  /** Which reading of smart-router.md's silences the emulator plays (sandbox/readings.ts). */
  reading: fc.constantFrom(...readingNames),
});

export type Lifecycle = typeof lifecycle extends fc.Arbitrary<infer T> ? T : never;

export async function settle(shop: Shop) {
  for (let i = 0; i < 200; i++) {
    const counters = (await (await fetch(`http://smart-router.sandbox/_sandbox/projects/${shop.projectId}/counters`)).json()) as {
      backlog: { timers: number };
    };
    if (counters.backlog.timers === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error("the emulator did not settle");
}

/** Drives one payment through the emulator; actions Smart Router refuses (refund before capture, …) are simply refused. */
export async function play(shop: Shop, life: Lifecycle): Promise<string> {
  // A one-step APM captures at once, so Smart Router only accepts automatic capture for it.
  const capture = "flow" in life.method && life.method.flow === "one-step" ? "auto" : life.capture;
  const review = "card" in life.method && life.review ? { review: life.review } : {};
  const payment = await shop.pay({ ...life.method, ...review, capture, amount: "40.00", currency: "EUR" });
  await settle(shop);
  const attempt = (action: Parameters<Shop["act"]>[1], body?: unknown) => shop.act(payment.id, action, body).catch(() => undefined);
  if (capture === "manual") {
    if (life.afterAuthorization === "capture") await attempt("capture");
    if (life.afterAuthorization === "partial-capture") await attempt("capture", { amount: "25.50" });
    if (life.afterAuthorization === "void") await attempt("void");
    await settle(shop);
  }
  for (const refund of life.refunds) {
    await attempt("refund", refund === "partial" ? { amount: "10.25" } : {});
    await settle(shop);
  }
  for (let edit = 1; edit <= life.edits; edit++) {
    await shop.edit(payment.id, { metadata: { note: `edit ${edit}` } });
  }
  return payment.id;
}
