import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { tryLater } from "../../../src/queue/retry";
import { SmartRouterError } from "../../../src/smart-router/errors";

describe("putting messages back for later", () => {
  it("re-queues what our own pacer deferred (acked, attempts untouched) and retries real failures with backoff", async () => {
    const batch = createMessageBatch("smart-router-webhooks", [
      { id: "paced", timestamp: new Date(), attempts: 7, body: { v: 0, note: "deferred by our pacer" } },
      { id: "refused", timestamp: new Date(), attempts: 2, body: { v: 0, note: "Smart Router said 429" } },
      { id: "down", timestamp: new Date(), attempts: 3, body: { v: 0, note: "Smart Router said 503" } },
    ]);
    const [paced, refused, down] = batch.messages;
    if (!paced || !refused || !down) throw new Error("batch incomplete");
    await tryLater(env.WEBHOOKS, [
      { message: paced, error: new SmartRouterError("rate_limited", "local events budget exhausted", { retryAfterMs: 4_000 }) },
      { message: refused, error: new SmartRouterError("rate_limited", "429", { status: 429, retryAfterMs: 30_000 }) },
      { message: down, error: new SmartRouterError("server", "503", { status: 503 }) },
    ]);
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks).toEqual(["paced"]);
    // (The delays themselves are unit-tested in backoff.test.ts; getQueueResult does not report them.)
    expect(result.retryMessages.map((m) => m.msgId).sort()).toEqual(["down", "refused"]);
  });
});
