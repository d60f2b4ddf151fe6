import { afterAll, describe, expect, it } from "vitest";
import { createSandbox } from "../../sandbox/index.ts";
import { act, control, createProject, operations, pay, timeline, waitFor } from "./helpers.ts";

const sandbox = createSandbox({ timeScale: 0.001 });
afterAll(() => sandbox.close());

// Dispute steps wait for /advance, so every test walks them explicitly.
const MANUAL = { auto_advance: false };

const PAID = ["transaction.requested:waiting", "transaction.authorized:authorized", "transaction.captured:completed"];
const PAID_OPERATIONS = ["authorization/attempt 10", "authorization/ok 10", "capture/attempt 10", "capture/ok 10"];

describe("test cards (smart-router.md §7)", () => {
  it("4242424242424242 succeeds: requested → authorized → captured (completed), attempt/result pairs in order", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { card: "4242 4242 4242 4242" });
    expect(tx).toMatchObject({
      status: "completed",
      amount: "10",
      authorized_amount: "10",
      captured_amount: "10",
      refunded_amount: "0",
      available_amount: "10",
      voided_amount: "0",
      authorized: true,
      captured: true,
      voided: false,
      refunded: false,
      chargedback: false,
      error_code: null,
      three_d_s_status: null,
    });
    expect(tx.authorized_at).not.toBeNull();
    expect(tx.captured_at).not.toBeNull();
    expect(operations(tx)).toEqual(PAID_OPERATIONS);
    expect(tx.operations?.map((operation) => operation.is_accountable)).toEqual([false, false, false, true]);
    expect(tx.operations?.every((operation) => operation.transaction_id === tx.id && operation.payment_type === "card")).toBe(true);
    expect(await timeline(sandbox, project, tx.id)).toEqual(PAID);
    // Nothing more is pending for a plain success.
    expect((await act(sandbox, project, tx.id, "advance")).status).toBe(409);
  });

  it("4000000000000002 is declined: requested → failed, card.declined", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { card: "4000000000000002" });
    expect(tx).toMatchObject({ status: "failed", authorized: false, captured: false, error_code: "card.declined", authorized_amount: "0" });
    expect(operations(tx)).toEqual(["authorization/attempt 10", "authorization/failed 10"]);
    expect(tx.operations?.[1]?.error_code).toBe("card.declined");
    expect(await timeline(sandbox, project, tx.id)).toEqual(["transaction.requested:waiting", "transaction.failed:failed"]);
    expect((await act(sandbox, project, tx.id, "capture")).status).toBe(409);
  });

  it("4000000000000010 authorizes but every capture fails", async () => {
    const project = await createProject(sandbox, MANUAL);
    const auto = await pay(sandbox, project, { card: "4000000000000010" });
    expect(auto).toMatchObject({
      status: "failed",
      authorized: true,
      captured: false,
      error_code: "gateway.declined",
      captured_amount: "0",
    });
    expect(operations(auto)).toEqual(["authorization/attempt 10", "authorization/ok 10", "capture/attempt 10", "capture/failed 10"]);
    expect(await timeline(sandbox, project, auto.id)).toEqual([
      "transaction.requested:waiting",
      "transaction.authorized:authorized",
      "transaction.failed:failed",
    ]);

    const manual = await pay(sandbox, project, { card: "4000000000000010", capture: "manual" });
    expect(manual.status).toBe("authorized");
    const first = await act(sandbox, project, manual.id, "capture");
    expect(first.body.outcome).toBe("declined");
    const second = await act(sandbox, project, manual.id, "capture");
    expect(second.body.outcome).toBe("declined");
    expect(operations(second.body.transaction).filter((line) => line === "capture/failed 10")).toHaveLength(2);
    // The authorization still stands and can be released.
    const voided = await act(sandbox, project, manual.id, "void");
    expect(voided.body.transaction).toMatchObject({ status: "voided", voided: true, voided_amount: "10" });
  });

  it("4000000000000069 succeeds, then a chargeback is created and lost (reversed)", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { card: "4000000000000069" });
    expect(tx.status).toBe("completed");
    const created = await act(sandbox, project, tx.id, "advance");
    expect(created.body.transaction).toMatchObject({ status: "chargeback-initiated", chargedback: true, captured_amount: "10" });
    expect(created.body.transaction.chargedback_at).not.toBeNull();
    const lost = await act(sandbox, project, tx.id, "advance");
    expect(lost.body.transaction.status).toBe("reversed");
    expect(operations(lost.body.transaction).slice(4)).toEqual([
      "chargeback/attempt -10",
      "chargeback/ok -10",
      "chargeback/attempt 0",
      "chargeback/ok 0",
    ]);
    expect(lost.body.transaction.operations?.[5]?.metadata).toEqual({ stage: "created" });
    expect(lost.body.transaction.operations?.[7]?.metadata).toEqual({ stage: "lost" });
    expect(await timeline(sandbox, project, tx.id)).toEqual([
      ...PAID,
      "transaction.chargeback.created:chargeback-initiated",
      "transaction.chargeback.lost:reversed",
    ]);
    expect((await act(sandbox, project, tx.id, "advance")).status).toBe(409);
  });

  it("4000000000000200 succeeds, then a chargeback is created and won (solved)", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { card: "4000000000000200" });
    await act(sandbox, project, tx.id, "advance");
    const won = await act(sandbox, project, tx.id, "advance");
    expect(won.body.transaction.status).toBe("solved");
    expect(operations(won.body.transaction).slice(4)).toEqual([
      "chargeback/attempt -10",
      "chargeback/ok -10",
      "chargeback/attempt 10",
      "chargeback/ok 10",
    ]);
    expect(await timeline(sandbox, project, tx.id)).toEqual([
      ...PAID,
      "transaction.chargeback.created:chargeback-initiated",
      "transaction.chargeback.won:solved",
    ]);
  });

  it("4000000000000309 succeeds, then a retrieval request arrives", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { card: "4000000000000309" });
    const step = await act(sandbox, project, tx.id, "advance");
    expect(step.body.transaction).toMatchObject({ status: "retrieval-request", chargedback: false });
    expect(await timeline(sandbox, project, tx.id)).toEqual([...PAID, "transaction.chargeback.retrieval-request:retrieval-request"]);
    expect((await act(sandbox, project, tx.id, "advance")).status).toBe(409);
  });

  it("4000000000004004 succeeds, then a fraud notification arrives", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { card: "4000000000004004" });
    const step = await act(sandbox, project, tx.id, "advance");
    expect(step.body.transaction.status).toBe("fraud-notification");
    expect(await timeline(sandbox, project, tx.id)).toEqual([...PAID, "transaction.chargeback.fraud-notification:fraud-notification"]);
  });

  it("4000000000000077 succeeds but its refunds are declined: a failed refund pair, no event, nothing refunded", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { card: "4000000000000077" });
    const refund = await act(sandbox, project, tx.id, "refund", { amount: "4" });
    expect(refund.status).toBe(200);
    expect(refund.body.outcome).toBe("declined");
    expect(refund.body.transaction).toMatchObject({ status: "completed", refunded: false, refunded_amount: "0", available_amount: "10" });
    expect(operations(refund.body.transaction).slice(4)).toEqual(["refund/attempt 4", "refund/failed 4"]);
    expect(await timeline(sandbox, project, tx.id)).toEqual(PAID);
  });

  it("4000000000000101 requires 3-D Secure: a three_d_s_check pair before the authorization", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { card: "4000000000000101" });
    expect(tx).toMatchObject({ status: "completed", three_d_s_status: "success" });
    expect(operations(tx)).toEqual(["three_d_s_check/attempt 10", "three_d_s_check/ok 10", ...PAID_OPERATIONS]);
    expect(await timeline(sandbox, project, tx.id)).toEqual(PAID);
  });

  it("any other valid card number succeeds; an invalid one is refused", async () => {
    const project = await createProject(sandbox, MANUAL);
    expect((await pay(sandbox, project, { card: "5555555555554444" })).status).toBe("completed");
    const bad = await control(sandbox, "POST", `/projects/${project}/transactions`, {
      amount: "10",
      currency: "EUR",
      card: "4242424242424241",
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error_type).toBe("request.card.invalid");
  });

  it("runs dispute steps by itself when auto_advance is on (delays × timeScale)", async () => {
    const project = await createProject(sandbox, { delays: { dispute_ms: 2000 } });
    const tx = await pay(sandbox, project, { card: "4000000000000069" });
    const steps = await waitFor(
      async () => {
        const names = await timeline(sandbox, project, tx.id);
        return names.length === 5 ? names : undefined;
      },
      3000,
      "the dispute to be lost",
    );
    expect(steps.slice(3)).toEqual(["transaction.chargeback.created:chargeback-initiated", "transaction.chargeback.lost:reversed"]);
  });
});
