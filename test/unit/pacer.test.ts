import { describe, expect, it } from "vitest";
import { acquire, initialPacerState, observe, PACING } from "../../src/rate-limiter/pacer";

const MINUTE = 60_000;

/** Drives `callers` callers that each retry as soon as told, over simulated time; returns grant times per lane. */
function simulate(options: { rpm: number; interactiveCallers: number; batchCallers: number; durationMs: number; tickMs?: number }) {
  const state = initialPacerState({ primary_rpm: options.rpm, batch_share: 0.5 }, 0);
  const grants = { interactive: [] as number[], batch: [] as number[] };
  const next = [
    ...Array.from({ length: options.interactiveCallers }, () => ({ lane: "interactive" as const, at: 0 })),
    ...Array.from({ length: options.batchCallers }, () => ({ lane: "batch" as const, at: 0 })),
  ];
  for (let now = 0; now < options.durationMs; now += options.tickMs ?? 1) {
    for (const caller of next) {
      if (caller.at > now) continue;
      const permit = acquire(state, "primary", caller.lane, now);
      if (permit.granted) {
        grants[caller.lane].push(now);
        caller.at = now;
      } else {
        caller.at = now + permit.retryAfterMs;
      }
    }
  }
  return { state, grants };
}

describe("pacer (GCRA with two lanes)", () => {
  it("never grants more than the rate plus the burst in any window, whatever the number of callers", () => {
    const rpm = 600;
    const { grants } = simulate({ rpm, interactiveCallers: 50, batchCallers: 50, durationMs: MINUTE, tickMs: 5 });
    const all = [...grants.interactive, ...grants.batch].sort((a, b) => a - b);
    const step = MINUTE / (rpm * PACING.headroom);
    for (const window of [1_000, 10_000, MINUTE]) {
      for (let i = 0; i < all.length; i++) {
        const start = all[i] ?? 0;
        const inWindow = all.filter((t) => t >= start && t < start + window).length;
        expect(inWindow).toBeLessThanOrEqual(Math.floor(window / step) + PACING.burst);
      }
    }
    // And it uses the budget: at least 90% of Smart Router's rate over the minute.
    expect(all.length).toBeGreaterThanOrEqual(rpm * 0.9);
  });

  it("grants every interactive call at once while batch work saturates its share", () => {
    const state = initialPacerState({ primary_rpm: 600, batch_share: 0.5 }, 0);
    let batchGrants = 0;
    let interactiveDenied = 0;
    for (let now = 0; now < MINUTE; now += 5) {
      // 100 batch workers ask every 5 ms; one checkout calls every 500 ms (120 rpm of business traffic).
      for (let worker = 0; worker < 100; worker++) if (acquire(state, "primary", "batch", now).granted) batchGrants += 1;
      if (now % 500 === 0 && !acquire(state, "primary", "interactive", now).granted) interactiveDenied += 1;
    }
    expect(interactiveDenied).toBe(0);
    expect(batchGrants).toBeGreaterThan(100);
    expect(batchGrants).toBeLessThanOrEqual(600 * 0.5);
  });

  it("never makes an interactive call wait while batch is busy and interactive is idle", () => {
    const state = initialPacerState({ primary_rpm: 600, batch_share: 1 }, 0);
    // Saturate batch for 30 s.
    for (let now = 0; now < 30_000; now += 10) acquire(state, "primary", "batch", now);
    const permit = acquire(state, "primary", "interactive", 30_000);
    expect(permit).toEqual({ granted: true });
  });

  it("starts batch slowly, grows without 429s and halves on one", () => {
    const state = initialPacerState({ primary_rpm: 1200, batch_share: 0.5 }, 0);
    const ceiling = 1200 * PACING.headroom * 0.5;
    expect(state.buckets.primary.batchRpm).toBeCloseTo(ceiling * PACING.batchStartFraction);
    let now = 0;
    for (; now < 3 * PACING.batchGrowthIntervalMs; now += 50) acquire(state, "primary", "batch", now);
    const grown = state.buckets.primary.batchRpm;
    expect(grown).toBeGreaterThan(ceiling * PACING.batchStartFraction);
    for (; now < 60_000; now += 50) acquire(state, "primary", "batch", now);
    expect(state.buckets.primary.batchRpm).toBeCloseTo(ceiling);
    observe(state, { bucket: "primary", status: 429 }, now);
    expect(state.buckets.primary.batchRpm).toBeCloseTo(ceiling / 2);
  });

  it("empties the bucket and pauses on a 429, honouring Retry-After", () => {
    const state = initialPacerState(null, 0);
    observe(state, { bucket: "events", status: 429, retryAfterMs: 5_000 }, 1_000);
    expect(acquire(state, "events", "interactive", 2_000)).toEqual({ granted: false, retryAfterMs: 4_000 });
    expect(acquire(state, "events", "interactive", 6_000)).toEqual({ granted: true });
    expect(acquire(state, "events", "interactive", 6_000).granted).toBe(false);
  });

  it("takes Smart Router's x-ratelimit as the rate and x-ratelimit-remaining as a correction", () => {
    const state = initialPacerState(null, 0);
    observe(state, { bucket: "primary", status: 200, limitPerMinute: 60 }, 0);
    expect(state.buckets.primary.rpm).toBe(60);
    observe(state, { bucket: "primary", status: 200, remaining: 0 }, 0);
    const permit = acquire(state, "primary", "interactive", 0);
    expect(permit.granted).toBe(false);
  });

  it("keeps each bucket independent", () => {
    const state = initialPacerState({ events_rpm: 60 }, 0);
    for (let i = 0; i < PACING.burst; i++) expect(acquire(state, "events", "interactive", 0).granted).toBe(true);
    expect(acquire(state, "events", "interactive", 0).granted).toBe(false);
    expect(acquire(state, "primary", "interactive", 0).granted).toBe(true);
    expect(acquire(state, "sandbox", "interactive", 0).granted).toBe(true);
  });
});
