import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { breakerSettingsFrom } from "../../../src/rate-limiter/breaker";
import type { Bucket, Lane, RateLimitSettings } from "../../../src/rate-limiter/limiter";
import { PACING, type PacerState } from "../../../src/rate-limiter/pacer";
import { uniqueId } from "../../support/fixtures";

const stubFor = (projectId: string) => env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(projectId));
type Stub = ReturnType<typeof stubFor>;

/** Counts the object's storage writes from now on (until it is evicted): wraps its KV `put` in place. */
async function countPuts(stub: Stub): Promise<void> {
  await runInDurableObject(stub, (_instance, state) => {
    const kv = state.storage.kv;
    const put = kv.put.bind(kv);
    const counter = { puts: 0 };
    Object.assign(globalThis, { [`puts:${state.id.toString()}`]: counter });
    kv.put = (key: string, value: unknown) => {
      counter.puts += 1;
      put(key, value);
    };
  });
}

async function putsOf(stub: Stub): Promise<number> {
  return runInDurableObject(stub, (_instance, state) => {
    const counter: unknown = Reflect.get(globalThis, `puts:${state.id.toString()}`);
    if (typeof counter !== "object" || counter === null || !("puts" in counter) || typeof counter.puts !== "number") {
      throw new Error("countPuts was not called on this instance");
    }
    return counter.puts;
  });
}

const storedPacer = (stub: Stub) => runInDurableObject(stub, (_instance, state) => state.storage.kv.get<PacerState>("pacer"));

/** Asks `times` times at once in one lane; the number granted. */
async function grantsOf(stub: Stub, bucket: Bucket, lane: Lane, settings: RateLimitSettings | null, times: number): Promise<number> {
  const permits = await Promise.all(Array.from({ length: times }, () => stub.acquire(bucket, lane, settings)));
  return permits.filter((permit) => permit.granted).length;
}

describe("ProjectRateLimiter: storage writes", () => {
  it("writes no storage row for steady calls and answers with unchanged headers, once the project is known", async () => {
    const stub = stubFor(uniqueId("proj"));
    // The first call ever stores the record that marks the project as used.
    expect((await stub.acquire("sandbox", "interactive", null)).granted).toBe(true);
    const first = await storedPacer(stub);
    expect(first).toBeDefined();
    await countPuts(stub);
    for (let i = 0; i < 30; i++) {
      await stub.acquire("sandbox", i % 2 === 0 ? "interactive" : "batch", null);
      // Smart Router's default sandbox rate (1200) and a drift correction: nothing to store.
      await stub.observe({ bucket: "sandbox", status: 200, limitPerMinute: 1200, remaining: 3 }, null);
      await stub.observe({ bucket: "sandbox", status: 404 }, null);
    }
    expect(await putsOf(stub)).toBe(0);
    // The clock moved in memory while the stored one stayed where the first record put it.
    expect((await stub.inspect())?.buckets.sandbox.tat).toBeGreaterThan(first?.buckets.sandbox.tat ?? Infinity);
    expect((await storedPacer(stub))?.buckets.sandbox.tat).toBe(first?.buckets.sandbox.tat);
    expect(await runInDurableObject(stub, (_instance, state) => state.storage.kv.get("breaker"))).toBeUndefined();
  });

  it("writes when it learns something a restart must keep: a new rate, a 429, new settings, the breaker opening and closing", async () => {
    const stub = stubFor(uniqueId("proj"));
    const { failureThreshold } = breakerSettingsFrom(env);
    await stub.acquire("primary", "interactive", null);
    await countPuts(stub);
    await stub.observe({ bucket: "primary", status: 200, limitPerMinute: 600 }, null);
    expect(await putsOf(stub)).toBe(1);
    await stub.observe({ bucket: "primary", status: 429, retryAfterMs: 0 }, null);
    expect(await putsOf(stub)).toBe(2);
    await stub.acquire("events", "interactive", { events_rpm: 900 });
    expect(await putsOf(stub)).toBe(3);
    for (let i = 0; i < failureThreshold; i++) await stub.observe({ bucket: "events", status: 503 }, { events_rpm: 900 });
    expect(await putsOf(stub)).toBe(4);
    await stub.observe({ bucket: "events", status: 200 }, { events_rpm: 900 });
    expect(await putsOf(stub)).toBe(5);
  });
});

describe("ProjectRateLimiter: a restart (memory lost, storage kept)", () => {
  it("grants no more in the first window after a restart than the same object never restarted", async () => {
    const settings = { sandbox_rpm: 60, batch_share: 1 };
    const [kept, restarted] = [stubFor(uniqueId("proj")), stubFor(uniqueId("proj"))];
    // Same history on both: the burst spent, only the first grant stored (the first record).
    for (const stub of [kept, restarted]) expect(await grantsOf(stub, "sandbox", "interactive", settings, 10)).toBe(PACING.burst);
    const stored = await storedPacer(restarted);
    const inMemory = await restarted.inspect();
    expect(stored?.buckets.sandbox.tat).toBeLessThan(inMemory?.buckets.sandbox.tat ?? 0);
    await evictDurableObject(restarted);

    for (const lane of ["interactive", "batch"] as const) {
      const afterRestart = await grantsOf(restarted, "sandbox", lane, settings, 10);
      const neverRestarted = await grantsOf(kept, "sandbox", lane, settings, 10);
      expect(afterRestart).toBe(0);
      expect(afterRestart).toBeLessThanOrEqual(neverRestarted);
    }
    // Restored as if the burst had just been spent: the next token is one interval away, not a minute.
    const permit = await restarted.acquire("sandbox", "interactive", settings);
    expect(permit.granted).toBe(false);
    if (!permit.granted) expect(permit.retryAfterMs).toBeLessThanOrEqual(Math.ceil(60_000 / (60 * PACING.headroom)));
    expect((await restarted.budget(settings, "test-restart")).buckets[0]?.tokensLeft).toBe(0);
  });

  it("restarts the batch lane at its slow start, even when a grown rate was stored", async () => {
    const projectId = uniqueId("proj");
    const stub = stubFor(projectId);
    const ceiling = 6000 * PACING.headroom * 0.6;
    await stub.acquire("primary", "batch", { primary_rpm: 6000, batch_share: 0.5 });
    await runInDurableObject(stub, (instance) => {
      // As if the lane had grown for a while (growth is in memory; it is stored with the next record, here new settings).
      const state = instance.inspect();
      if (state) state.buckets.primary.batchRpm = 0.5 * ceiling;
    });
    const settings = { primary_rpm: 6000, batch_share: 0.6 };
    await stub.acquire("primary", "interactive", settings);
    expect((await storedPacer(stub))?.buckets.primary.batchRpm).toBeCloseTo(0.5 * ceiling);
    await evictDurableObject(stub);
    const restored = (await stubFor(projectId).budget(settings, projectId)).buckets[0];
    expect(restored?.batchRatePerMinute).toBeCloseTo(ceiling * PACING.batchStartFraction);
  });

  it("keeps a learned rate, a 429's pause and its recent 429s across a restart", async () => {
    const projectId = uniqueId("proj");
    // The merchant configured 900 rpm; Smart Router's header says 120, which overrides it until the settings change.
    const settings = { events_rpm: 900 };
    await stubFor(projectId).observe({ bucket: "events", status: 200, limitPerMinute: 120 }, settings);
    await stubFor(projectId).observe({ bucket: "events", status: 429, retryAfterMs: 30_000 }, settings);
    await evictDurableObject(stubFor(projectId));
    const fresh = stubFor(projectId);
    const permit = await fresh.acquire("events", "interactive", settings);
    expect(permit.granted).toBe(false);
    if (!permit.granted) expect(permit.retryAfterMs).toBeGreaterThan(25_000);
    const events = (await fresh.budget(settings, projectId)).buckets.find((bucket) => bucket.bucket === "events");
    expect(events?.ratePerMinute).toBe(120);
    expect(events?.recent429s).toHaveLength(1);
    expect((await fresh.inspect())?.buckets.events.rpm).toBe(120);
  });

  it("keeps a tripped breaker open, since when it opened, across a restart", async () => {
    const projectId = uniqueId("proj");
    const { failureThreshold } = breakerSettingsFrom(env);
    for (let i = 0; i < failureThreshold; i++) await stubFor(projectId).observe({ bucket: "primary", status: 503 }, null);
    const before = await stubFor(projectId).budget(null, projectId);
    expect(before.breaker.state).toBe("open");
    await evictDurableObject(stubFor(projectId));
    const fresh = stubFor(projectId);
    expect((await fresh.budget(null, projectId)).breaker.since).toBe(before.breaker.since);
    expect((await fresh.inspectBreaker()).nextProbeAt).not.toBeNull();
  });

  it("forgets a count of failures short of the threshold (it lives in memory): the breaker opens after a full run again", async () => {
    const projectId = uniqueId("proj");
    const { failureThreshold } = breakerSettingsFrom(env);
    for (let i = 0; i < failureThreshold - 1; i++) await stubFor(projectId).observe({ bucket: "primary", status: 503 }, null);
    await evictDurableObject(stubFor(projectId));
    const fresh = stubFor(projectId);
    await fresh.observe({ bucket: "primary", status: 503 }, null);
    expect((await fresh.inspectBreaker()).nextProbeAt).toBeNull();
    for (let i = 1; i < failureThreshold; i++) await fresh.observe({ bucket: "primary", status: 503 }, null);
    expect((await fresh.inspectBreaker()).nextProbeAt).not.toBeNull();
  });
});
