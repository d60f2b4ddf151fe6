import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../../src/db/client";
import { nudgeDueLanes } from "../../../src/endpoints/sweep";
import { eventually, openShop } from "../../support/sandbox";
import { dbFor } from "../../support/shards";
import { api, apiJson, createEndpoint, messagesOf, receivedByTransaction, type ShownReplay, sinkRequests } from "./support";

const errorCode = async (response: Response) => ((await response.json()) as { error: { code: string } }).error.code;

/** A shop with one endpoint on a sink, and two captured payments whose messages were all delivered. */
async function deliveredShop() {
  const shop = await openShop({ unlimited: true });
  const sink = `replay-${shop.projectId}`;
  const { endpoint } = await createEndpoint(shop.merchant, sink);
  const since = new Date(Date.now() - 1000).toISOString();
  for (const amount of ["11.00", "12.00"]) await shop.pay({ card: "4242424242424242", amount, currency: "EUR" });
  await shop.relay({ rounds: 10 });
  const messages = await eventually(async () => {
    const listed = await messagesOf(shop.merchant, endpoint.id);
    expect(listed.filter((m) => m.type === "transaction.captured")).toHaveLength(2);
    expect(listed.every((m) => m.status === "delivered")).toBe(true);
    return listed;
  });
  return { shop, sink, endpoint, since, messages, until: new Date(Date.now() + 1000).toISOString() };
}

describe("endpoints: replay", () => {
  it("counts a range in a dry run, then resends exactly its messages with the same webhook-ids, in order per transaction", async () => {
    const { shop, sink, endpoint, since, until, messages } = await deliveredShop();
    const path = `/v1/endpoints/${endpoint.id}/replay`;
    const dry = await apiJson<{ replay: ShownReplay }>(shop.merchant, path, { body: { since, until, dry_run: true } }, 202);
    expect(dry.replay).toMatchObject({ status: "completed", total: messages.length, sent: 0, failed: 0, dry_run: true });
    const typed = await apiJson<{ replay: ShownReplay }>(
      shop.merchant,
      path,
      { body: { since, until, types: ["transaction.captured"], dry_run: true } },
      202,
    );
    expect(typed.replay.total).toBe(2);
    const before = (await sinkRequests(sink)).length;
    expect(before).toBe(messages.length);

    const started = await apiJson<{ replay: ShownReplay }>(shop.merchant, path, { body: { since, until } }, 202);
    expect(started.replay).toMatchObject({ status: "queued", total: messages.length, dry_run: false });
    const done = await eventually(async () => {
      const read = await apiJson<{ replay: ShownReplay }>(shop.merchant, `/v1/endpoints/${endpoint.id}/replays/${started.replay.id}`);
      expect(read.replay.status).toBe("completed");
      return read.replay;
    });
    expect(done).toMatchObject({ sent: messages.length, failed: 0 });
    const resent = (await sinkRequests(sink)).slice(before);
    expect(resent.map((r) => r.headers["webhook-id"]).sort()).toEqual(messages.map((m) => m.id).sort());
    const originals = receivedByTransaction((await sinkRequests(sink)).slice(0, before));
    for (const [transactionId, lane] of receivedByTransaction(resent)) expect(lane, transactionId).toEqual(originals.get(transactionId));
    const cancel = await api(shop.merchant, `/v1/endpoints/${endpoint.id}/replays/${started.replay.id}`, { method: "DELETE" });
    expect(cancel.status).toBe(409);
  });

  it("cancels a queued replay, and refuses a bad range, a paused endpoint and another merchant's replay", async () => {
    const { shop, endpoint, since, until } = await deliveredShop();
    const path = `/v1/endpoints/${endpoint.id}/replay`;
    expect((await api(shop.merchant, path, { body: { since: until, until: since } })).status).toBe(400);
    expect((await api(shop.merchant, path, { body: { since, until, types: ["*"] } })).status).toBe(400);
    const started = await apiJson<{ replay: ShownReplay }>(shop.merchant, path, { body: { since, until } }, 202);
    const other = await openShop();
    expect((await api(other.merchant, `/v1/endpoints/${endpoint.id}/replays/${started.replay.id}`)).status).toBe(404);
    const cancelled = await api(shop.merchant, `/v1/endpoints/${endpoint.id}/replays/${started.replay.id}`, { method: "DELETE" });
    // Raced by the batch lane: cancelled if it had not finished, else a 409 naming it completed.
    expect([200, 409]).toContain(cancelled.status);
    await apiJson(shop.merchant, `/v1/endpoints/${endpoint.id}`, { method: "PATCH", body: { status: "paused" } });
    const refused = await api(shop.merchant, path, { body: { since, until } });
    expect(refused.status).toBe(409);
    expect(await errorCode(refused)).toBe("conflict");
    expect((await api(shop.merchant, path, { body: { since, until, dry_run: true } })).status).toBe(202);
  });
});

describe("endpoints: the sweep", () => {
  it("nudges a lane whose nudge was lost, once it is past its grace, and not twice within the resend window", async () => {
    const shop = await openShop({ unlimited: true });
    const sink = `sweep-${shop.projectId}`;
    const { endpoint } = await createEndpoint(shop.merchant, sink);
    await apiJson(shop.merchant, `/v1/endpoints/${endpoint.id}`, { method: "PATCH", body: { status: "paused" } });
    await shop.pay({ card: "4242424242424242", amount: "13.00", currency: "EUR" });
    await shop.relay({ rounds: 10 });
    await eventually(async () => expect((await messagesOf(shop.merchant, endpoint.id)).length).toBeGreaterThan(0));
    // Enabled behind the API's back: no resume nudge, as if it had been lost.
    const d1 = await dbFor(shop.merchant.merchant.id);
    await d1.prepare("UPDATE endpoints SET status = 'enabled' WHERE id = ?").bind(endpoint.id).run();
    const db = openDatabase(d1);
    // Within its grace, a due message is taken to have its own nudge on the way.
    expect(await nudgeDueLanes({ db, queue: env.ENDPOINT_MESSAGES, now: Date.now() })).toBe(0);
    const threeMinutesAgo = new Date(Date.now() - 3 * 60_000).toISOString();
    await d1.prepare("UPDATE endpoint_messages SET next_attempt_at = ? WHERE endpoint_id = ?").bind(threeMinutesAgo, endpoint.id).run();
    const now = Date.now();
    expect(await nudgeDueLanes({ db, queue: env.ENDPOINT_MESSAGES, now })).toBe(1);
    expect(await nudgeDueLanes({ db, queue: env.ENDPOINT_MESSAGES, now: now + 1 })).toBe(0);
    await eventually(async () => {
      const listed = await messagesOf(shop.merchant, endpoint.id);
      expect(listed.every((m) => m.status === "delivered")).toBe(true);
    });
    expect((await sinkRequests(sink)).length).toBeGreaterThan(0);
  });
});
