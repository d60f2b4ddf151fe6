import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { PACING } from "../../../src/rate-limiter/pacer";
import { uniqueId } from "../../support/fixtures";

const stubFor = (projectId: string) => env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(projectId));

describe("ProjectRateLimiter Durable Object", () => {
  it("grants no more than the burst to many concurrent callers", async () => {
    const stub = stubFor(uniqueId("proj"));
    // 60 rpm: one token a second, so within this test only the burst can be granted.
    const settings = { primary_rpm: 60 };
    const permits = await Promise.all(Array.from({ length: 50 }, () => stub.acquire("primary", "interactive", settings)));
    const granted = permits.filter((p) => p.granted).length;
    expect(granted).toBe(PACING.burst);
    for (const permit of permits) if (!permit.granted) expect(permit.retryAfterMs).toBeGreaterThan(0);
  });

  it("grants an interactive call while batch callers are being refused", async () => {
    const stub = stubFor(uniqueId("proj"));
    const settings = { primary_rpm: 60, batch_share: 0.5 };
    const batch = await Promise.all(Array.from({ length: 20 }, () => stub.acquire("primary", "batch", settings)));
    expect(batch.filter((p) => p.granted).length).toBeLessThanOrEqual(1);
    expect(await stub.acquire("primary", "interactive", settings)).toEqual({ granted: true });
  });

  it("adapts to Smart Router's headers and 429s", async () => {
    const stub = stubFor(uniqueId("proj"));
    await stub.observe({ bucket: "events", status: 200, limitPerMinute: 120, remaining: 50 }, null);
    await stub.observe({ bucket: "events", status: 429, retryAfterMs: 30_000 }, null);
    const permit = await stub.acquire("events", "interactive", null);
    expect(permit.granted).toBe(false);
    if (!permit.granted) expect(permit.retryAfterMs).toBeGreaterThan(25_000);
    const state = await stub.inspect();
    expect(state?.buckets.events.rpm).toBe(120);
  });

  it("keeps its state across an eviction (tokens are in storage, not memory)", async () => {
    const projectId = uniqueId("proj");
    const stub = stubFor(projectId);
    const settings = { sandbox_rpm: 60 };
    for (let i = 0; i < PACING.burst; i++) expect((await stub.acquire("sandbox", "interactive", settings)).granted).toBe(true);
    const before = await stub.inspect();
    await evictDurableObject(stub);
    const after = await stubFor(projectId).inspect();
    expect(after?.buckets.sandbox.tat).toBe(before?.buckets.sandbox.tat);
    expect((await stubFor(projectId).acquire("sandbox", "interactive", settings)).granted).toBe(false);
  });

  it("stores the reservation before answering", async () => {
    const stub = stubFor(uniqueId("proj"));
    await stub.acquire("primary", "interactive", null);
    const stored = await runInDurableObject(stub, (_instance, state) =>
      state.storage.kv.get<{ buckets: { primary: { tat: number } } }>("pacer"),
    );
    expect(stored?.buckets.primary.tat).toBeGreaterThan(0);
  });
});
