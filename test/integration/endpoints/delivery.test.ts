import { describe, expect, it } from "vitest";
import { eventually, openShop } from "../../support/sandbox";
import { alertsOf } from "../alerts/support";
import { api, apiJson, createEndpoint, messagesOf, receivedByTransaction, type SinkRequest, sinkAnswers, sinkRequests } from "./support";

/** A message's place in its lane: its change, then the `transaction.captured` that follows it. */
const positionOf = (m: { sequence: number; type: string }) => m.sequence * 2 + (m.type === "transaction.captured" ? 1 : 0);

/** Every request of each transaction, failed attempts included, in the order the sink got them: never a step back. */
function expectNeverOutOfOrder(requests: readonly SinkRequest[]) {
  for (const [transactionId, lane] of receivedByTransaction(requests)) {
    const positions = lane.map(positionOf);
    expect(positions, transactionId).toEqual([...positions].sort((a, b) => a - b));
  }
}

/** A card payment captured then refunded in part: its changes, a captured message, and `transaction.partially-refunded` last. */
async function payAndRefund(shop: Awaited<ReturnType<typeof openShop>>) {
  const payment = await shop.pay({ card: "4242424242424242", amount: "20.00", currency: "EUR" });
  await shop.relay({ rounds: 10 });
  await shop.act(payment.id, "refund", { amount: "5.00" });
  await shop.relay({ rounds: 10 });
  return payment;
}

describe("endpoints: delivery", () => {
  it("holds message n+1 until n is answered 2xx, through a receiver's failures, transactions independent", async () => {
    const shop = await openShop({ unlimited: true });
    const sink = `failing-${shop.projectId}`;
    const { endpoint } = await createEndpoint(shop.merchant, sink);
    await sinkAnswers(sink, 503, 4);
    const first = await payAndRefund(shop);
    const second = await payAndRefund(shop);
    const messages = await eventually(
      async () => {
        const listed = await messagesOf(shop.merchant, endpoint.id);
        expect(listed.filter((m) => m.type === "transaction.partially-refunded")).toHaveLength(2);
        expect(listed.every((m) => m.status === "delivered")).toBe(true);
        return listed;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    const requests = await sinkRequests(sink);
    expect(requests.length).toBe(messages.length + 4);
    expectNeverOutOfOrder(requests);
    for (const id of [first.id, second.id]) {
      const delivered = messages.filter((m) => m.transaction_id === id);
      expect(delivered.map(positionOf)).toEqual(delivered.map(positionOf).sort((a, b) => a - b));
    }
    expect(messages.some((m) => m.attempts > 1)).toBe(true);
  }, 30_000);

  it("a paused endpoint receives nothing, then everything in order once enabled", async () => {
    const shop = await openShop({ unlimited: true });
    const sink = `paused-${shop.projectId}`;
    const { endpoint } = await createEndpoint(shop.merchant, sink);
    await apiJson(shop.merchant, `/v1/endpoints/${endpoint.id}`, { method: "PATCH", body: { status: "paused" } });
    await payAndRefund(shop);
    const kept = await eventually(async () => {
      const listed = await messagesOf(shop.merchant, endpoint.id);
      expect(listed.map((m) => m.type)).toContain("transaction.partially-refunded");
      return listed;
    });
    expect(kept.every((m) => m.status === "pending" && m.attempts === 0)).toBe(true);
    expect(await sinkRequests(sink)).toEqual([]);
    await apiJson(shop.merchant, `/v1/endpoints/${endpoint.id}`, { method: "PATCH", body: { status: "enabled" } });
    const received = await eventually(async () => {
      const requests = await sinkRequests(sink);
      expect(requests).toHaveLength(kept.length);
      return requests;
    });
    expect(received.map((r) => r.headers["webhook-id"])).toEqual(kept.map((m) => m.id));
    expectNeverOutOfOrder(received);
  });

  it("gives a message up past its horizon, disables an endpoint failing for 3 days (scaled) with an alert, and resumes on enable", async () => {
    const shop = await openShop({ unlimited: true });
    const sink = `down-${shop.projectId}`;
    const { endpoint } = await createEndpoint(shop.merchant, sink);
    await sinkAnswers(sink, 500);
    await payAndRefund(shop);
    await eventually(
      async () =>
        expect((await apiJson<{ endpoint: { status: string } }>(shop.merchant, `/v1/endpoints/${endpoint.id}`)).endpoint.status).toBe(
          "disabled",
        ),
      { timeoutMs: 25_000, intervalMs: 250 },
    );
    const open = await alertsOf(shop.merchant.api_key, "open");
    expect(open.find((a) => a.kind === "endpoint_disabled")?.detail).toContain(endpoint.id);
    const afterDisable = await messagesOf(shop.merchant, endpoint.id);
    expect(afterDisable[0]?.status).toBe("failed");
    expect(afterDisable.some((m) => m.status === "pending")).toBe(true);
    const sentWhileDown = (await sinkRequests(sink)).length;
    expectNeverOutOfOrder(await sinkRequests(sink));

    await sinkAnswers(sink, 200);
    expect((await api(shop.merchant, `/v1/endpoints/${endpoint.id}`, { method: "PATCH", body: { status: "enabled" } })).status).toBe(200);
    await eventually(async () => {
      const listed = await messagesOf(shop.merchant, endpoint.id);
      expect(listed.filter((m) => m.status === "pending")).toEqual([]);
    });
    const all = await sinkRequests(sink);
    expect(all.length).toBeGreaterThan(sentWhileDown);
    expectNeverOutOfOrder(all);
  }, 40_000);
});
