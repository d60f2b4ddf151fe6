import { describe, expect, it } from "vitest";
import { consume, deliveryOf } from "../../support/consumer";
import { history, type Step } from "../../support/histories";
import { eventually, openShop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";
import { apiJson, createEndpoint, messagesOf, receivedByTransaction, sinkRequests, verifies } from "./support";

describe("endpoints: the stream", () => {
  it("pushes every status change in sequence order, captured once right after its change, signed, filtered by type", async () => {
    const shop = await openShop({ unlimited: true });
    const all = `all-${shop.projectId}`;
    const some = `some-${shop.projectId}`;
    const everything = await createEndpoint(shop.merchant, all, ["*"]);
    await createEndpoint(shop.merchant, some, ["transaction.captured", "transaction.refunded"]);
    const payment = await shop.pay({ card: "4242424242424242", amount: "10.00", currency: "EUR" });
    await shop.relay({ rounds: 10 });
    await eventually(async () => expect((await sinkRequests(all)).some((r) => r.json.type === "transaction.captured")).toBe(true));
    await shop.act(payment.id, "refund", { amount: "10.00" });
    await shop.relay({ rounds: 10 });
    const received = await eventually(async () => {
      const requests = await sinkRequests(all);
      expect(requests.some((r) => r.json.type === "transaction.refunded")).toBe(true);
      return requests;
    });
    const lane = receivedByTransaction(received).get(payment.id) ?? [];
    const changes = lane.filter((m) => m.type !== "transaction.captured");
    expect(changes.map((m) => m.sequence)).toEqual(changes.map((_, i) => i + 1));
    const captured = lane.filter((m) => m.type === "transaction.captured");
    expect(captured).toHaveLength(1);
    const completedAt = lane.findIndex((m) => m.type === "transaction.completed");
    expect(lane[completedAt + 1]).toMatchObject({ type: "transaction.captured", sequence: lane[completedAt]?.sequence });
    expect(lane.at(-1)?.type).toBe("transaction.refunded");
    for (const request of received) {
      expect(await verifies(everything.signing_secret, request)).toBe(true);
      expect(request.json.data.merchant_id).toBe(shop.merchant.merchant.id);
      if (request.json.type !== "transaction.captured")
        expect(`transaction.${request.json.data.transaction.status}`).toBe(request.json.type);
    }
    const first = received.find((r) => r.json.data.sequence === 1);
    expect(first?.json.data.previous_status).toBeNull();
    const filtered = await eventually(async () => {
      const requests = await sinkRequests(some);
      expect(requests.map((r) => r.json.type)).toEqual(["transaction.captured", "transaction.refunded"]);
      return requests;
    });
    // Sequence numbers belong to the transaction: the filtered endpoint sees only some of them.
    expect(filtered.map((r) => r.json.data.sequence)).toEqual([lane[completedAt]?.sequence, lane.at(-1)?.sequence]);
    const listed = await messagesOf(shop.merchant, everything.endpoint.id, `&transaction_id=${payment.id}`);
    expect(listed.map((m) => m.id)).toEqual(lane.map((m) => m.id));
    expect(listed.every((m) => m.status === "delivered" && m.attempts === 1 && m.last_http_status === 200)).toBe(true);
  });

  it("does not announce a capture a second time when later changes come", async () => {
    const shop = await openShop({ unlimited: true });
    const sink = `once-${shop.projectId}`;
    await createEndpoint(shop.merchant, sink, ["transaction.captured"]);
    const payment = await shop.pay({ card: "4242424242424242", amount: "12.00", currency: "EUR" });
    await shop.relay({ rounds: 10 });
    await shop.act(payment.id, "refund", { amount: "2.00" });
    await shop.relay({ rounds: 10 });
    await shop.act(payment.id, "refund", { amount: "3.00" });
    await shop.relay({ rounds: 10 });
    await eventually(async () => expect(await sinkRequests(sink)).toHaveLength(1));
    const endpoints = await apiJson<{ endpoints: { id: string }[] }>(shop.merchant, "/v1/endpoints");
    const messages = await messagesOf(shop.merchant, endpoints.endpoints[0]?.id ?? "");
    expect(messages.map((m) => m.type)).toEqual(["transaction.captured"]);
  });

  it("keeps no stream without an endpoint; an endpoint created later numbers on from the changes before it", async () => {
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const payment = await shop.pay({ card: "4242424242424242", amount: "20.00", currency: "EUR" });
    await shop.relay({ rounds: 10 });
    const statusOf = () =>
      shardedDb
        .prepare("SELECT status, status_changes FROM transactions WHERE merchant_id = ? AND id = ?")
        .bind(merchantId, payment.id)
        .first<{ status: string; status_changes: number }>();
    const before = await eventually(async () => {
      const row = await statusOf();
      expect(row?.status).toBe("completed");
      return row;
    });
    const streamRows = async () =>
      Promise.all(
        ["transaction_changes", "transaction_streams", "endpoint_messages"].map(
          async (table) =>
            (await shardedDb.prepare(`SELECT count(*) AS n FROM ${table} WHERE merchant_id = ?`).bind(merchantId).first<{ n: number }>())
              ?.n,
        ),
      );
    expect(await streamRows()).toEqual([0, 0, 0]);
    const shown = await apiJson<{ timeline: { kind: string }[] }>(shop.merchant, `/v1/transactions/${payment.id}/timeline`);
    expect(before?.status_changes).toBe(shown.timeline.filter((entry) => entry.kind === "state_change").length);

    const sink = `later-${shop.projectId}`;
    await createEndpoint(shop.merchant, sink, ["*"]);
    await shop.act(payment.id, "refund", { amount: "20.00" });
    await shop.relay({ rounds: 10 });
    const received = await eventually(async () => {
      const requests = await sinkRequests(sink);
      expect(requests.length).toBeGreaterThan(0);
      return requests;
    });
    // Only the change applied after the endpoint was created, numbered after every earlier change; the capture came before.
    expect(received.map((r) => [r.json.type, r.json.data.sequence, r.json.data.previous_status])).toEqual([
      ["transaction.refunded", (before?.status_changes ?? 0) + 1, "completed"],
    ]);
    expect((await statusOf())?.status_changes).toBe((before?.status_changes ?? 0) + 1);
  });
});

describe("endpoints: a new transaction's capture, whatever Smart Router's clock says", () => {
  it("announces an event's first capture of a transaction born after the endpoint, though its times are older (as fulfilment does)", async () => {
    const shop = await openShop({ unlimited: true, webhooks: false });
    const sink = `clock-${shop.projectId}`;
    await createEndpoint(shop.merchant, sink, ["*"]);
    // The property's counterexample: two plain steps of a generated history, whose times start on 2026-11-01.
    const plain: Step = { choice: 0, edit: false, operations: 0, gapMs: 1, micros: 0, clock: "ms", fixedAmounts: false };
    const transactionId = `tr_clock${Date.now().toString(36)}`;
    const events: { id: string; name: string }[] = [];
    for (const snapshot of history(transactionId, shop.projectId, [plain, plain])) events.push(await shop.script(snapshot));
    await consume(events.map((event) => deliveryOf(shop.merchant.merchant.id, event)));
    const fulfilled = await shardedDb
      .prepare("SELECT count(*) AS n FROM fulfillments WHERE merchant_id = ? AND transaction_id = ?")
      .bind(shop.merchant.merchant.id, transactionId)
      .first<{ n: number }>();
    expect(fulfilled?.n).toBe(1);
    const captured = await shardedDb
      .prepare("SELECT count(*) AS n FROM endpoint_messages WHERE merchant_id = ? AND transaction_id = ? AND type = 'transaction.captured'")
      .bind(shop.merchant.merchant.id, transactionId)
      .first<{ n: number }>();
    expect(captured?.n).toBe(1);
  });
});
