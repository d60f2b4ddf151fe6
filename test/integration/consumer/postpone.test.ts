import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { VERIFICATION_RETRY } from "../../../src/queue/backoff";
import { type Postponed, postpone, type RetryState, STORAGE_WAIT_SECONDS } from "../../../src/queue/retry";
import { SmartRouterError } from "../../../src/smart-router/errors";

type Body = RetryState & { v: 0; note: string };

/** A queue binding that records what is sent, or refuses everything. */
function recordingQueue(refuse = false) {
  const sent: { body: Body; delaySeconds?: number }[] = [];
  const queue = {
    send: async () => {
      throw new Error("not used");
    },
    sendBatch: async (messages: Iterable<MessageSendRequest<Body>>) => {
      if (refuse) throw new Error("queue unavailable");
      for (const m of messages) sent.push({ body: m.body, delaySeconds: m.delaySeconds });
      return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
    },
  } as unknown as Queue;
  return { queue, sent };
}

const NOW = Date.parse("2026-12-01T12:00:00.000Z");

function batchOf(bodies: Record<string, Body>) {
  return createMessageBatch<Body>(
    "smart-router-webhooks",
    Object.entries(bodies).map(([id, body]) => ({ id, timestamp: new Date(NOW), attempts: 1, body })),
  );
}

describe("putting work back for later", () => {
  it("re-queues with its retry state and acks: pacer waits keep their attempt and have no horizon, failures back off, past the horizon a dead letter", async () => {
    const started = new Date(NOW - 60_000).toISOString();
    const expired = new Date(NOW - VERIFICATION_RETRY.horizonMs - 1).toISOString();
    const batch = batchOf({
      paced: { v: 0, note: "our pacer", attempt: 2, first_attempt_at: started },
      breaker: { v: 0, note: "behind an open breaker for 4 days", attempt: 3, first_attempt_at: expired },
      refused: { v: 0, note: "429" },
      down: { v: 0, note: "503", attempt: 5, first_attempt_at: started },
      old: { v: 0, note: "3 days of 503", attempt: 40, first_attempt_at: expired },
    });
    const [paced, breaker, refused, down, old] = batch.messages;
    if (!paced || !breaker || !refused || !down || !old) throw new Error("batch incomplete");
    const errors = [
      new SmartRouterError("rate_limited", "local events budget exhausted", { retryAfterMs: 4_000 }),
      new SmartRouterError("rate_limited", "circuit open", { retryAfterMs: 10_000 }),
      new SmartRouterError("rate_limited", "429", { status: 429, retryAfterMs: 30_000 }),
      new SmartRouterError("server", "503", { status: 503 }),
      new SmartRouterError("server", "503", { status: 503 }),
    ];
    const items: Postponed<Body>[] = [paced, breaker, refused, down, old].map((message, i) => ({
      message,
      body: message.body,
      error: errors[i],
    }));
    const { queue, sent } = recordingQueue();
    const dead: string[] = [];
    await postpone(queue, items, {
      policy: VERIFICATION_RETRY,
      scale: 1,
      now: NOW,
      deadLetter: async (item, reason) => {
        dead.push(`${item.message.id}: ${reason}`);
      },
    });

    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks.sort()).toEqual(["breaker", "down", "old", "paced", "refused"]);
    expect(result.retryMessages).toEqual([]);
    const byNote = Object.fromEntries(sent.map((s) => [s.body.note, s]));
    expect(byNote["our pacer"]).toEqual({ body: { v: 0, note: "our pacer", attempt: 2, first_attempt_at: started }, delaySeconds: 4 });
    // Our own waits have no horizon: they end when the pacer grants the call.
    expect(byNote["behind an open breaker for 4 days"]).toEqual({
      body: { v: 0, note: "behind an open breaker for 4 days", attempt: 3, first_attempt_at: expired },
      delaySeconds: 10,
    });
    expect(byNote["429"]?.body).toEqual({ v: 0, note: "429", attempt: 1, first_attempt_at: new Date(NOW).toISOString() });
    expect(byNote["429"]?.delaySeconds).toBeGreaterThanOrEqual(30);
    expect(byNote["503"]?.body.attempt).toBe(6);
    // The 6th wait doubles to 64 s, ±10% once a wait is a minute or more.
    expect(byNote["503"]?.delaySeconds).toBeGreaterThanOrEqual(57);
    expect(byNote["503"]?.delaySeconds).toBeLessThanOrEqual(71);
    expect(byNote["3 days of 503"]).toBeUndefined();
    expect(dead).toEqual([expect.stringMatching(/^old: verification gave up after 41 tries over 72\.0 h: 503$/)]);
  });

  it("waits for a failing D1 shard like for our pacer: a look a minute, no attempt spent, no horizon", async () => {
    const expired = new Date(NOW - VERIFICATION_RETRY.horizonMs - 1).toISOString();
    const batch = batchOf({ shard: { v: 0, note: "shard down for 4 days", attempt: 2, first_attempt_at: expired } });
    const [shard] = batch.messages;
    if (!shard) throw new Error("batch incomplete");
    // What D1 throws for a shard whose tables are gone (the chaos run's --shard-down).
    const error = new Error("D1_ERROR: no such table: fulfillments: SQLITE_ERROR");
    const { queue, sent } = recordingQueue();
    const dead: string[] = [];
    await postpone(queue, [{ message: shard, body: shard.body, error }], {
      policy: VERIFICATION_RETRY,
      scale: 1,
      now: NOW,
      deadLetter: async (item) => {
        dead.push(item.message.id);
      },
    });
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks).toEqual(["shard"]);
    expect(dead).toEqual([]);
    expect(STORAGE_WAIT_SECONDS).toBe(60);
    expect(sent).toEqual([{ body: { v: 0, note: "shard down for 4 days", attempt: 2, first_attempt_at: expired }, delaySeconds: 60 }]);
  });

  it("leaves the message to the queue's own retry when the queue refuses the new one", async () => {
    const batch = batchOf({ down: { v: 0, note: "503" } });
    const [down] = batch.messages;
    if (!down) throw new Error("batch incomplete");
    const { queue } = recordingQueue(true);
    await postpone(queue, [{ message: down, body: down.body, error: new SmartRouterError("server", "503", { status: 503 }) }], {
      policy: VERIFICATION_RETRY,
      scale: 1,
      now: NOW,
      deadLetter: async () => {
        throw new Error("not expected");
      },
    });
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(["down"]);
  });

  it("hands work waiting on our pacer or breaker to `park` (none of it re-queued), and re-queues it when parking fails", async () => {
    const started = new Date(NOW - 60_000).toISOString();
    const bodies = {
      paced: { v: 0 as const, note: "our pacer", attempt: 1, first_attempt_at: started },
      breaker: { v: 0 as const, note: "open breaker" },
      down: { v: 0 as const, note: "503" },
    };
    const errors = [
      new SmartRouterError("rate_limited", "local events budget exhausted", { retryAfterMs: 4_000 }),
      new SmartRouterError("rate_limited", "circuit open", { retryAfterMs: 10_000 }),
      new SmartRouterError("server", "503", { status: 503 }),
    ];
    for (const parkingWorks of [true, false]) {
      const batch = batchOf(bodies);
      const items: Postponed<Body>[] = batch.messages.map((message, i) => ({ message, body: message.body, error: errors[i] }));
      const { queue, sent } = recordingQueue();
      const parked: { notes: string[]; hintMs: number | null }[] = [];
      await postpone(queue, items, {
        policy: VERIFICATION_RETRY,
        scale: 1,
        now: NOW,
        deadLetter: async () => {
          throw new Error("not expected");
        },
        park: async (waiting, hintMs) => {
          if (!parkingWorks) throw new Error("D1_ERROR: database is locked");
          parked.push({ notes: waiting.map((item) => item.body.note), hintMs });
          for (const item of waiting) item.message.ack();
        },
      });
      const result = await getQueueResult(batch, createExecutionContext());
      expect(result.explicitAcks.sort()).toEqual(["breaker", "down", "paced"]);
      if (parkingWorks) {
        // The shortest hint of what was parked: its wake-up comes then.
        expect(parked).toEqual([{ notes: ["our pacer", "open breaker"], hintMs: 4_000 }]);
        expect(sent.map((s) => s.body.note)).toEqual(["503"]);
      } else {
        expect(sent.map((s) => s.body.note).sort()).toEqual(["503", "open breaker", "our pacer"]);
      }
    }
  });
});
