import { describe, expect, it } from "vitest";
import {
  BREAKER,
  type BreakerState,
  breakerObserve,
  breakerPermit,
  breakerSettingsFrom,
  initialBreakerState,
  recordGrant,
} from "../../src/rate-limiter/breaker";
import type { RateLimiter, RateObservation } from "../../src/rate-limiter/limiter";
import { SmartRouterClient } from "../../src/smart-router/client";

const settings = { ...BREAKER };
const INTERVAL = BREAKER.probeIntervalMs;

/** Asks for a call as the Durable Object does: the breaker's permit, then the grant recorded. */
function ask(state: BreakerState, now: number): boolean {
  const permit = breakerPermit(state, now);
  if (permit.granted) recordGrant(state, now, settings);
  return permit.granted;
}

/** A breaker opened at `now` by a run of failures. */
function opened(now = 0): BreakerState {
  const state = initialBreakerState();
  for (let i = 0; i < BREAKER.failureThreshold; i++) breakerObserve(state, 503, now, settings);
  return state;
}

describe("circuit breaker", () => {
  it("opens after failureThreshold failures in a row, not before", () => {
    const state = initialBreakerState();
    for (let i = 0; i < BREAKER.failureThreshold - 1; i++) {
      breakerObserve(state, i % 2 === 0 ? 503 : 0, 0, settings);
      expect(ask(state, 0)).toBe(true);
    }
    breakerObserve(state, 500, 0, settings);
    expect(breakerPermit(state, 1)).toEqual({ granted: false, retryAfterMs: INTERVAL - 1 });
  });

  it("counts network errors and timeouts (status 0) as failures", () => {
    const state = initialBreakerState();
    for (let i = 0; i < BREAKER.failureThreshold; i++) breakerObserve(state, 0, 0, settings);
    expect(breakerPermit(state, 0).granted).toBe(false);
  });

  it("starts the count again after a good answer (2xx or 4xx)", () => {
    for (const good of [200, 404, 401]) {
      const state = initialBreakerState();
      for (let i = 0; i < BREAKER.failureThreshold - 1; i++) breakerObserve(state, 503, 0, settings);
      breakerObserve(state, good, 0, settings);
      for (let i = 0; i < BREAKER.failureThreshold - 1; i++) breakerObserve(state, 503, 0, settings);
      expect(breakerPermit(state, 0).granted).toBe(true);
    }
  });

  it("does not count a 429, nor close on one", () => {
    const closed = initialBreakerState();
    for (let i = 0; i < 10 * BREAKER.failureThreshold; i++) breakerObserve(closed, 429, 0, settings);
    expect(closed.failures).toBe(0);
    expect(breakerPermit(closed, 0).granted).toBe(true);

    const open = opened();
    expect(ask(open, INTERVAL)).toBe(true);
    breakerObserve(open, 429, INTERVAL + 50, settings);
    expect(breakerPermit(open, INTERVAL + 100).granted).toBe(false);
  });

  it("grants exactly one probe per interval while open, whatever the number of callers", () => {
    const state = opened();
    const probes: number[] = [];
    // 50 callers asking every 10 ms for a minute; every probe fails 200 ms after it was granted.
    for (let now = 0; now < 60_000; now += 10) {
      for (let caller = 0; caller < 50; caller++) if (ask(state, now)) probes.push(now);
      if (probes.includes(now - 200)) breakerObserve(state, 503, now, settings);
    }
    expect(probes.length).toBeLessThanOrEqual(Math.ceil(60_000 / INTERVAL));
    expect(probes.length).toBeGreaterThanOrEqual(Math.floor(60_000 / (INTERVAL + 200)));
    for (let i = 1; i < probes.length; i++) expect((probes[i] ?? 0) - (probes[i - 1] ?? 0)).toBeGreaterThanOrEqual(INTERVAL);
  });

  it("denies with the time left until the probe is due", () => {
    const state = opened(1_000);
    expect(breakerPermit(state, 4_000)).toEqual({ granted: false, retryAfterMs: INTERVAL - 3_000 });
    expect(ask(state, 1_000 + INTERVAL)).toBe(true);
    expect(breakerPermit(state, 1_000 + INTERVAL)).toEqual({ granted: false, retryAfterMs: INTERVAL });
  });

  it("closes when the probe succeeds", () => {
    const state = opened();
    expect(ask(state, INTERVAL)).toBe(true);
    breakerObserve(state, 200, INTERVAL + 30, settings);
    expect(state).toEqual(initialBreakerState());
    for (let i = 0; i < 100; i++) expect(ask(state, INTERVAL + 30)).toBe(true);
  });

  it("stays open for another interval when the probe fails", () => {
    const state = opened();
    expect(ask(state, INTERVAL)).toBe(true);
    breakerObserve(state, 503, INTERVAL + 500, settings);
    expect(breakerPermit(state, 2 * INTERVAL).granted).toBe(false);
    expect(ask(state, 2 * INTERVAL + 500)).toBe(true);
  });

  it("grants another probe an interval later when a probe is never observed (its caller crashed)", () => {
    const state = opened();
    expect(ask(state, INTERVAL)).toBe(true);
    expect(ask(state, 2 * INTERVAL - 1)).toBe(false);
    expect(ask(state, 2 * INTERVAL)).toBe(true);
  });

  it("says to store it only when its position or next probe moves, not for a count or a steady good answer", () => {
    const state = initialBreakerState();
    expect(breakerObserve(state, 200, 0, settings)).toBe(false);
    for (let i = 0; i < BREAKER.failureThreshold - 1; i++) expect(breakerObserve(state, 503, 0, settings)).toBe(false);
    expect(breakerObserve(state, 200, 0, settings)).toBe(false);
    for (let i = 0; i < BREAKER.failureThreshold - 1; i++) breakerObserve(state, 503, 0, settings);
    expect(breakerObserve(state, 429, 0, settings)).toBe(false);
    // The threshold's failure opens it: stored.
    expect(breakerObserve(state, 0, 100, settings)).toBe(true);
    // Another failure at the same instant leaves the next probe where it is; the probe's failure later moves it.
    expect(breakerObserve(state, 503, 100, settings)).toBe(false);
    expect(ask(state, 100 + INTERVAL)).toBe(true);
    expect(breakerObserve(state, 503, 150 + INTERVAL, settings)).toBe(true);
    expect(breakerObserve(state, 429, 200 + INTERVAL, settings)).toBe(false);
    // The good answer closes it: stored.
    expect(breakerObserve(state, 200, 200 + INTERVAL, settings)).toBe(true);
    expect(breakerObserve(state, 200, 300 + INTERVAL, settings)).toBe(false);
  });

  it("reads the probe interval from BREAKER_PROBE_INTERVAL_MS and refuses a bad value", () => {
    expect(breakerSettingsFrom({})).toEqual(BREAKER);
    expect(breakerSettingsFrom({ BREAKER_PROBE_INTERVAL_MS: "500" })).toEqual({ ...BREAKER, probeIntervalMs: 500 });
    for (const bad of ["soon", "0", "-5", "1.5"]) {
      expect(() => breakerSettingsFrom({ BREAKER_PROBE_INTERVAL_MS: bad })).toThrow(/BREAKER_PROBE_INTERVAL_MS/);
    }
  });
});

describe("Smart Router client and the breaker", () => {
  it("reports a call that got no answer (network error, timeout) to the limiter as status 0 before throwing", async () => {
    for (const failure of [new TypeError("fetch failed"), new DOMException("timed out", "TimeoutError")]) {
      const observed: RateObservation[] = [];
      const limiter: RateLimiter = {
        acquire: async () => ({ granted: true }),
        observe: async (observation) => {
          observed.push(observation);
        },
      };
      const client = new SmartRouterClient({
        baseUrl: "https://api.example.test",
        credentials: { projectId: "proj_live", secretKey: "sk" },
        limiter,
        lane: "interactive",
        fetch: async () => {
          throw failure;
        },
      });
      await expect(client.fetchEvent("ev_1")).rejects.toMatchObject({ kind: "network" });
      expect(observed).toEqual([{ bucket: "events", status: 0 }]);
    }
  });
});
