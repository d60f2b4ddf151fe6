import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Lane, RateObservation } from "../../src/rate-limiter/limiter";
import {
  acquire,
  bucketBudget,
  initialPacerState,
  observe,
  PACING,
  type PacerState,
  reconfigure,
  restorePacer,
  sameSettings,
} from "../../src/rate-limiter/pacer";

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

/** One step of a history: a call asked in a lane, or an answer observed, `gap` ms after the previous one. */
type Step = { gap: number } & ({ lane: Lane } | { observation: Omit<RateObservation, "bucket"> });

const stepArbitrary = (learnRates: boolean): fc.Arbitrary<Step> =>
  fc.oneof(
    fc.record({ gap: fc.integer({ min: 0, max: 400 }), lane: fc.constantFrom<Lane>("interactive", "batch") }),
    fc.record({
      gap: fc.integer({ min: 0, max: 400 }),
      observation: fc.record(
        {
          status: fc.constantFrom(200, 200, 200, 429, 503),
          remaining: fc.integer({ min: 0, max: 10 }),
          retryAfterMs: fc.integer({ min: 0, max: 3_000 }),
          limitPerMinute: learnRates ? fc.constantFrom(120, 600, 3_000) : fc.constant(600),
        },
        { requiredKeys: ["status"] },
      ),
    }),
  );

/**
 * Plays a history on one bucket as the Durable Object does: the state is stored at the start and whenever `observe`
 * says it learned something. Returns the live state, the last stored copy, the grant times and the end time.
 */
function play(steps: Step[]) {
  const state = initialPacerState({ primary_rpm: 600, batch_share: 0.5 }, 0);
  let stored: PacerState = structuredClone(state);
  const grants: number[] = [];
  let now = 0;
  for (const step of steps) {
    now += step.gap;
    if ("lane" in step) {
      if (acquire(state, "primary", step.lane, now).granted) grants.push(now);
    } else if (observe(state, { bucket: "primary", ...step.observation }, now)) {
      stored = structuredClone(state);
    }
  }
  return { state, stored, grants, now };
}

/** Greedy callers of both lanes asking every 5 ms from `from` for `durationMs`; the grant times. */
function drive(state: PacerState, from: number, durationMs: number): number[] {
  const grants: number[] = [];
  for (let now = from; now < from + durationMs; now += 5) {
    for (const lane of ["interactive", "batch", "interactive", "batch"] as const) {
      if (acquire(state, "primary", lane, now).granted) grants.push(now);
    }
  }
  return grants;
}

describe("pacer restored after a restart (its memory lost, its last stored record kept)", () => {
  it("is never ahead of the pacer that was not restarted: clocks at or past it, same pause, batch no faster (property)", () => {
    fc.assert(
      fc.property(fc.array(stepArbitrary(true), { maxLength: 120 }), fc.integer({ min: 0, max: 5_000 }), (steps, idle) => {
        const { state, stored, now } = play(steps);
        const restartAt = now + idle;
        const restored = restorePacer(stored, restartAt).buckets.primary;
        const live = state.buckets.primary;
        expect(restored.rpm).toBe(live.rpm);
        expect(restored.pausedUntil).toBe(live.pausedUntil);
        expect(restored.recent429s ?? []).toEqual(live.recent429s ?? []);
        expect(restored.tat).toBeGreaterThanOrEqual(live.tat);
        expect(restored.batchTat).toBeGreaterThanOrEqual(live.batchTat);
        expect(restored.batchRpm).toBeLessThanOrEqual(live.batchRpm);
      }),
      { numRuns: 300 },
    );
  });

  it("keeps every window of the whole run, before and after the restart, within the rate plus the burst (property)", () => {
    fc.assert(
      fc.property(fc.array(stepArbitrary(false), { maxLength: 120 }), fc.integer({ min: 0, max: 3_000 }), (steps, idle) => {
        const { stored, grants, now } = play(steps);
        const restartAt = now + idle;
        const all = [...grants, ...drive(restorePacer(stored, restartAt), restartAt, 10_000)];
        const step = MINUTE / (600 * PACING.headroom);
        for (const window of [1_000, 5_000]) {
          for (const start of all) {
            const inWindow = all.filter((t) => t >= start && t < start + window).length;
            expect(inWindow).toBeLessThanOrEqual(Math.floor(window / step) + PACING.burst);
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it("grants nothing at the restart after a burst that was never stored, and its first grant one interval later", () => {
    const state = initialPacerState({ primary_rpm: 600 }, 0);
    const stored = structuredClone(state);
    for (let i = 0; i < PACING.burst; i++) expect(acquire(state, "primary", "interactive", 0).granted).toBe(true);
    // Restarted at once: the stored record (nothing spent) must not give the burst back.
    const restored = restorePacer(stored, 0);
    expect(bucketBudget(restored, "primary", 0).tokensLeft).toBe(0);
    const step = MINUTE / (600 * PACING.headroom);
    expect(acquire(restored, "primary", "interactive", 0)).toEqual({ granted: false, retryAfterMs: Math.ceil(step) });
    expect(acquire(restored, "primary", "interactive", Math.ceil(step)).granted).toBe(true);
  });

  it("restarts the batch lane at its slow start, whatever rate it had grown to", () => {
    const state = initialPacerState({ primary_rpm: 1200, batch_share: 0.5 }, 0);
    for (let now = 0; now < 60_000; now += 50) acquire(state, "primary", "batch", now);
    const floor = 1200 * PACING.headroom * 0.5 * PACING.batchStartFraction;
    expect(state.buckets.primary.batchRpm).toBeGreaterThan(floor);
    const restored = restorePacer(state, 60_000);
    expect(restored.buckets.primary.batchRpm).toBeCloseTo(floor);
    expect(restored.buckets.primary.lastGrowth).toBe(60_000);
  });

  it("says which answers must be stored: a new rate or a 429, not a steady header nor drift", () => {
    const state = initialPacerState(null, 0);
    expect(observe(state, { bucket: "events", status: 200, limitPerMinute: 3_000, remaining: 7 }, 10)).toBe(false);
    expect(observe(state, { bucket: "events", status: 503 }, 20)).toBe(false);
    expect(observe(state, { bucket: "events", status: 200, limitPerMinute: 120 }, 30)).toBe(true);
    expect(observe(state, { bucket: "events", status: 200, limitPerMinute: 120, remaining: 0 }, 40)).toBe(false);
    expect(observe(state, { bucket: "events", status: 429, retryAfterMs: 1_000 }, 50)).toBe(true);
  });

  it("compares admin settings as the pacer applies them (rates and batch share)", () => {
    const state = initialPacerState({ sandbox_rpm: 60 }, 0);
    expect(sameSettings(state, { sandbox_rpm: 60, webhooks_rpm: 10 })).toBe(true);
    expect(sameSettings(state, { sandbox_rpm: 60, batch_share: 0.5 })).toBe(true);
    expect(sameSettings(state, { sandbox_rpm: 61 })).toBe(false);
    expect(sameSettings(state, { sandbox_rpm: 60, batch_share: 0.4 })).toBe(false);
    expect(sameSettings(state, null)).toBe(false);
    reconfigure(state, null);
    expect(sameSettings(state, null)).toBe(true);
  });
});
