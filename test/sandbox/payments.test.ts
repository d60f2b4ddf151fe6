import { afterAll, describe, expect, it } from "vitest";
import { createSandbox } from "../../sandbox/index.ts";
import { act, control, createProject, operations, pay, timeline, waitFor } from "./helpers.ts";

const sandbox = createSandbox({ timeScale: 0.001 });
afterAll(() => sandbox.close());

const MANUAL = { auto_advance: false };

describe("APMs", () => {
  it("one-step APM: pending with an open capture attempt, then captured (completed) with no separate authorization event", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { apm: "sandbox-apm", amount: "25.5" });
    expect(tx).toMatchObject({ status: "pending", payment_type: "sandbox-apm", card_id: null, authorized: false, captured: false });
    expect(operations(tx)).toEqual(["capture/attempt 25.5"]);
    const done = await act(sandbox, project, tx.id, "complete");
    expect(done.body.outcome).toBe("succeeded");
    expect(done.body.transaction).toMatchObject({
      status: "completed",
      authorized: true,
      captured: true,
      authorized_amount: "25.5",
      captured_amount: "25.5",
      available_amount: "25.5",
    });
    expect(operations(done.body.transaction)).toEqual(["capture/attempt 25.5", "capture/ok 25.5"]);
    expect(await timeline(sandbox, project, tx.id)).toEqual(["transaction.requested:pending", "transaction.captured:completed"]);
    expect((await act(sandbox, project, tx.id, "complete")).status).toBe(409);
  });

  it("one-step APM failing: the pending attempt gets a failed result and transaction.failed fires", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { apm: "ideal" });
    const failed = await act(sandbox, project, tx.id, "fail", {
      error_code: "customer.cancelled",
      error_message: "The customer cancelled.",
    });
    expect(failed.body.outcome).toBe("declined");
    expect(failed.body.transaction).toMatchObject({
      status: "failed",
      error_code: "customer.cancelled",
      error_message: "The customer cancelled.",
    });
    expect(operations(failed.body.transaction)).toEqual(["capture/attempt 10", "capture/failed 10"]);
    expect(await timeline(sandbox, project, tx.id)).toEqual(["transaction.requested:pending", "transaction.failed:failed"]);
  });

  it("an APM created with outcome failure fails when it completes by itself", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { apm: "sandbox-apm", outcome: "failure" });
    const step = await act(sandbox, project, tx.id, "advance");
    expect(step.body.transaction).toMatchObject({ status: "failed", error_code: "payment.declined" });
  });

  it("two-step APM with automatic capture: authorized, then captured", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { apm: "klarna", flow: "two-step" });
    expect(operations(tx)).toEqual(["authorization/attempt 10"]);
    const done = await act(sandbox, project, tx.id, "complete");
    expect(done.body.transaction.status).toBe("completed");
    expect(operations(done.body.transaction)).toEqual([
      "authorization/attempt 10",
      "authorization/ok 10",
      "capture/attempt 10",
      "capture/ok 10",
    ]);
    expect(await timeline(sandbox, project, tx.id)).toEqual([
      "transaction.requested:pending",
      "transaction.authorized:authorized",
      "transaction.captured:completed",
    ]);
  });

  it("two-step APM with manual capture stays authorized until captured", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { apm: "klarna", flow: "two-step", capture: "manual" });
    expect((await act(sandbox, project, tx.id, "capture")).status).toBe(409);
    const authorized = await act(sandbox, project, tx.id, "complete");
    expect(authorized.body.transaction).toMatchObject({ status: "authorized", captured: false });
    const captured = await act(sandbox, project, tx.id, "capture");
    expect(captured.body.transaction).toMatchObject({ status: "completed", captured_amount: "10" });
  });

  it("a one-step APM cannot be captured manually", async () => {
    const project = await createProject(sandbox, MANUAL);
    const refused = await control(sandbox, "POST", `/projects/${project}/transactions`, {
      amount: "10",
      currency: "EUR",
      apm: "sandbox-apm",
      capture: "manual",
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error_type).toBe("request.validation.error");
  });

  it("completes pending APMs by itself after apm_ms × timeScale when auto_advance is on", async () => {
    const project = await createProject(sandbox, { delays: { apm_ms: 3000 } });
    const tx = await pay(sandbox, project, { apm: "sandbox-apm" });
    expect(tx.status).toBe("pending");
    const steps = await waitFor(async () => {
      const names = await timeline(sandbox, project, tx.id);
      return names.length === 2 ? names : undefined;
    });
    expect(steps).toEqual(["transaction.requested:pending", "transaction.captured:completed"]);
  });

  it("refunds an APM asynchronously: transaction.operation.refund.pending, then transaction.refunded", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { apm: "sandbox-apm", amount: "20" });
    await act(sandbox, project, tx.id, "complete");
    const pending = await act(sandbox, project, tx.id, "refund", { amount: "5" });
    expect(pending.body.outcome).toBe("pending");
    expect(pending.body.transaction).toMatchObject({ status: "completed", refunded_amount: "0" });
    expect((await act(sandbox, project, tx.id, "refund")).status).toBe(409);
    const settled = await act(sandbox, project, tx.id, "advance");
    expect(settled.body.transaction).toMatchObject({ status: "partially-refunded", refunded_amount: "5", available_amount: "15" });
    expect(operations(settled.body.transaction).slice(2)).toEqual(["refund/attempt 5", "refund/ok 5"]);
    expect(await timeline(sandbox, project, tx.id)).toEqual([
      "transaction.requested:pending",
      "transaction.captured:completed",
      "transaction.operation.refund.pending:completed",
      "transaction.refunded:partially-refunded",
    ]);
  });
});

describe("manual capture, refunds and voids", () => {
  it("captures part of an authorization", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { card: "4242424242424242", capture: "manual", amount: "10" });
    expect(tx).toMatchObject({ status: "authorized", authorized_amount: "10", captured_amount: "0" });
    expect((await act(sandbox, project, tx.id, "capture", { amount: "10.01" })).status).toBe(400);
    const captured = await act(sandbox, project, tx.id, "capture", { amount: "4.5" });
    expect(captured.body.transaction).toMatchObject({
      status: "completed",
      captured_amount: "4.5",
      available_amount: "4.5",
      authorized_amount: "10",
    });
    expect((await act(sandbox, project, tx.id, "capture")).status).toBe(409);
  });

  it("refunds partially, then fully, then refuses", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { card: "4242424242424242", amount: "22.99" });
    const over = await act(sandbox, project, tx.id, "refund", { amount: "23" });
    expect(over.status).toBe(400);
    expect(over.body.error_type).toBe("request.validation.invalid-amount");
    const partial = await act(sandbox, project, tx.id, "refund", { amount: "2.99" });
    expect(partial.body).toMatchObject({ outcome: "succeeded" });
    expect(partial.body.transaction).toMatchObject({
      status: "partially-refunded",
      refunded: true,
      refunded_amount: "2.99",
      available_amount: "20",
      captured_amount: "22.99",
    });
    const rest = await act(sandbox, project, tx.id, "refund");
    expect(rest.body.transaction).toMatchObject({ status: "refunded", refunded_amount: "22.99", available_amount: "0" });
    expect(operations(rest.body.transaction).slice(4)).toEqual([
      "refund/attempt 2.99",
      "refund/ok 2.99",
      "refund/attempt 20",
      "refund/ok 20",
    ]);
    expect((await act(sandbox, project, tx.id, "refund", { amount: "1" })).status).toBe(409);
    expect(await timeline(sandbox, project, tx.id)).toEqual([
      "transaction.requested:waiting",
      "transaction.authorized:authorized",
      "transaction.captured:completed",
      "transaction.refunded:partially-refunded",
      "transaction.refunded:refunded",
    ]);
  });

  it("refuses to refund what was never captured", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { card: "4242424242424242", capture: "manual" });
    const refused = await act(sandbox, project, tx.id, "refund");
    expect(refused.status).toBe(409);
    expect(refused.body.error_type).toBe("gateway.invalid-state");
  });

  it("voids an authorization; a captured or voided transaction cannot be voided", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { card: "4242424242424242", capture: "manual", amount: "7" });
    const voided = await act(sandbox, project, tx.id, "void");
    expect(voided.body.transaction).toMatchObject({ status: "voided", voided: true, voided_amount: "7", captured: false });
    expect(voided.body.transaction.voided_at).not.toBeNull();
    expect(operations(voided.body.transaction).slice(2)).toEqual(["void/attempt 7", "void/ok 7"]);
    expect((await act(sandbox, project, tx.id, "void")).status).toBe(409);
    expect((await act(sandbox, project, tx.id, "capture")).status).toBe(409);
    expect(await timeline(sandbox, project, tx.id)).toEqual([
      "transaction.requested:waiting",
      "transaction.authorized:authorized",
      "transaction.voided:voided",
    ]);
    const captured = await pay(sandbox, project, { card: "4242424242424242" });
    expect((await act(sandbox, project, captured.id, "void")).status).toBe(409);
  });

  it("keeps amounts exact in zero- and three-decimal currencies", async () => {
    const project = await createProject(sandbox, MANUAL);
    const yen = await pay(sandbox, project, { card: "4242424242424242", amount: "1500", currency: "JPY" });
    expect(yen.captured_amount).toBe("1500");
    const dinar = await pay(sandbox, project, { card: "4242424242424242", amount: "1.234", currency: "KWD" });
    const refund = await act(sandbox, project, dinar.id, "refund", { amount: "0.004" });
    expect(refund.body.transaction.available_amount).toBe("1.23");
  });
});

describe("payment input validation", () => {
  it("answers bad payment requests with clear 400s", async () => {
    const project = await createProject(sandbox, MANUAL);
    const base = { amount: "10", currency: "EUR", card: "4242424242424242" };
    const cases: [string, unknown, string][] = [
      ["too many decimals", { ...base, amount: "10.001" }, "request.validation.invalid-amount"],
      ["zero", { ...base, amount: "0" }, "request.validation.invalid-amount"],
      ["a float", { ...base, amount: 10 }, "request.validation.error"],
      ["lower-case currency", { ...base, currency: "eur" }, "request.validation.error"],
      ["card and apm", { ...base, apm: "sandbox-apm" }, "request.validation.error"],
      ["neither", { amount: "10", currency: "EUR" }, "request.validation.error"],
      ["flow with a card", { ...base, flow: "two-step" }, "request.validation.error"],
      ["unknown field", { ...base, colour: "red" }, "request.validation.error"],
      ["not JSON", "{", "request.bad-format"],
    ];
    for (const [label, body, errorType] of cases) {
      const answer = await control(sandbox, "POST", `/projects/${project}/transactions`, body);
      expect(answer.status, label).toBe(400);
      expect(answer.body.error_type, label).toBe(errorType);
      expect(answer.body.message, label).toEqual(expect.any(String));
    }
  });

  it("answers unknown projects and transactions with 404", async () => {
    const project = await createProject(sandbox, MANUAL);
    expect(
      (
        await control(sandbox, "POST", "/projects/test-proj_nobody/transactions", {
          amount: "1",
          currency: "EUR",
          card: "4242424242424242",
        })
      ).status,
    ).toBe(404);
    const missing = await act(sandbox, project, "tr_nope", "capture");
    expect(missing.status).toBe(404);
    expect(missing.body.error_type).toBe("resource.transaction.not-found");
  });
});
