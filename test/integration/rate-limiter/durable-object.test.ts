import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { breakerSettingsFrom } from "../../../src/rate-limiter/breaker";
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

  it("keeps its pace across an eviction (tokens are in memory; a fresh instance restores with its clock at or past the lost one)", async () => {
    const projectId = uniqueId("proj");
    const stub = stubFor(projectId);
    const settings = { sandbox_rpm: 60 };
    for (let i = 0; i < PACING.burst; i++) expect((await stub.acquire("sandbox", "interactive", settings)).granted).toBe(true);
    const before = await stub.inspect();
    await evictDurableObject(stub);
    expect((await stubFor(projectId).acquire("sandbox", "interactive", settings)).granted).toBe(false);
    const after = await stubFor(projectId).inspect();
    expect(after?.buckets.sandbox.tat).toBeGreaterThanOrEqual(before?.buckets.sandbox.tat ?? Infinity);
  });

  it("stores a first record before answering the first call (a restart finding it restores conservatively)", async () => {
    const stub = stubFor(uniqueId("proj"));
    await stub.acquire("primary", "interactive", null);
    const stored = await runInDurableObject(stub, (_instance, state) =>
      state.storage.kv.get<{ buckets: { primary: { tat: number } } }>("pacer"),
    );
    expect(stored?.buckets.primary.tat).toBeGreaterThan(0);
  });
});

describe("ProjectRateLimiter Durable Object: circuit breaker", () => {
  const { failureThreshold, probeIntervalMs } = breakerSettingsFrom(env);
  const failTimes = async (stub: ReturnType<typeof stubFor>, count: number, status = 503) => {
    for (let i = 0; i < count; i++) await stub.observe({ bucket: "events", status }, null);
  };

  it("opens for the whole project, every lane and bucket, after failures in a row in one bucket", async () => {
    const stub = stubFor(uniqueId("proj"));
    await failTimes(stub, failureThreshold - 1);
    expect((await stub.acquire("primary", "interactive", null)).granted).toBe(true);
    await stub.observe({ bucket: "sandbox", status: 0 }, null);
    for (const [bucket, lane] of [
      ["events", "interactive"],
      ["primary", "interactive"],
      ["sandbox", "batch"],
    ] as const) {
      const permit = await stub.acquire(bucket, lane, null);
      expect(permit.granted).toBe(false);
      if (!permit.granted) {
        expect(permit.retryAfterMs).toBeGreaterThan(0);
        expect(permit.retryAfterMs).toBeLessThanOrEqual(probeIntervalMs);
      }
    }
  });

  it("does not open on 429s", async () => {
    const stub = stubFor(uniqueId("proj"));
    for (let i = 0; i < 2 * failureThreshold; i++) await stub.observe({ bucket: "primary", status: 429, retryAfterMs: 0 }, null);
    expect((await stub.inspectBreaker()).nextProbeAt).toBeNull();
    expect((await stub.acquire("events", "interactive", null)).granted).toBe(true);
  });

  it("grants one probe to many concurrent callers once it is due, and closes when the probe succeeds", async () => {
    const projectId = uniqueId("proj");
    const stub = stubFor(projectId);
    await failTimes(stub, failureThreshold);
    // Make the probe due now rather than wait an interval (inspectBreaker answers the live state in the instance).
    await runInDurableObject(stub, (instance) => {
      instance.inspectBreaker().nextProbeAt = Date.now() - 1;
    });
    const fresh = stubFor(projectId);
    const permits = await Promise.all(Array.from({ length: 30 }, () => fresh.acquire("events", "interactive", null)));
    expect(permits.filter((p) => p.granted)).toHaveLength(1);
    await fresh.observe({ bucket: "events", status: 200 }, null);
    expect(await fresh.inspectBreaker()).toEqual({ failures: 0, nextProbeAt: null });
    expect((await fresh.acquire("primary", "batch", null)).granted).toBe(true);
  });

  it("keeps the breaker open across an eviction (it is in storage, not memory)", async () => {
    const projectId = uniqueId("proj");
    await failTimes(stubFor(projectId), failureThreshold, 0);
    await evictDurableObject(stubFor(projectId));
    expect((await stubFor(projectId).acquire("primary", "interactive", null)).granted).toBe(false);
  });
});
