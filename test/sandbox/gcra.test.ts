import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type GcraState, gcraRemaining, gcraTake } from "../../sandbox/gcra.ts";

const T0 = 1_800_000_000_000;

/** Takes `count` tokens at the same instant and returns the decisions. */
function burst(count: number, now: number, limit: { rpm: number; burst: number }, start?: GcraState) {
  let state = start;
  const decisions = [];
  for (let i = 0; i < count; i++) {
    const decision = gcraTake(state, now, limit);
    state = decision.state;
    decisions.push(decision);
  }
  return { decisions, state };
}

describe("GCRA arithmetic", () => {
  it("allows `burst` requests at once from a full bucket, counting remaining down to 0, then refuses", () => {
    const { decisions } = burst(6, T0, { rpm: 60, burst: 5 });
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, true, true, false]);
    expect(decisions.map((d) => d.remaining)).toEqual([4, 3, 2, 1, 0, 0]);
  });

  it("says when the next token arrives: one emission interval (60 000 / rpm ms) after the bucket emptied", () => {
    const limit = { rpm: 60, burst: 5 };
    const { decisions, state } = burst(6, T0, limit);
    expect(decisions[5]?.retryAfterMs).toBe(1000);
    expect(gcraTake(state, T0 + 999, limit).allowed).toBe(false);
    const later = gcraTake(state, T0 + 1000, limit);
    expect(later.allowed).toBe(true);
    expect(later.remaining).toBe(0);
  });

  it("a refusal does not change the state (a refused request costs nothing)", () => {
    const limit = { rpm: 60, burst: 1 };
    const first = gcraTake(undefined, T0, limit);
    const refused = gcraTake(first.state, T0 + 10, limit);
    expect(refused.allowed).toBe(false);
    expect(refused.state).toEqual(first.state);
    expect(refused.retryAfterMs).toBe(990);
  });

  it("refills at rpm: at 3000 rpm one token every 20 ms, exactly", () => {
    const limit = { rpm: 3000, burst: 1 };
    let state = gcraTake(undefined, T0, limit).state;
    for (let i = 1; i <= 1000; i++) {
      expect(gcraTake(state, T0 + i * 20 - 1, limit).allowed).toBe(false);
      const decision = gcraTake(state, T0 + i * 20, limit);
      expect(decision.allowed).toBe(true);
      state = decision.state;
    }
  });

  it("handles rates that do not divide a minute (7 rpm: a token every 8571.43 ms) in exact integers", () => {
    const limit = { rpm: 7, burst: 7 };
    const { decisions, state } = burst(8, T0, limit);
    expect(decisions.filter((d) => d.allowed)).toHaveLength(7);
    expect(decisions[7]?.retryAfterMs).toBe(8572);
    expect(gcraTake(state, T0 + 8571, limit).allowed).toBe(false);
    expect(gcraTake(state, T0 + 8572, limit).allowed).toBe(true);
    // A whole minute later all seven tokens are back, not six.
    expect(gcraRemaining(state, T0 + 60_000, limit)).toBe(7);
  });

  it("a bucket left alone fills back to `burst`, never more", () => {
    const limit = { rpm: 600, burst: 3 };
    const { state } = burst(3, T0, limit);
    expect(gcraRemaining(state, T0, limit)).toBe(0);
    expect(gcraRemaining(state, T0 + 100, limit)).toBe(1);
    expect(gcraRemaining(state, T0 + 300, limit)).toBe(3);
    expect(gcraRemaining(state, T0 + 3_600_000, limit)).toBe(3);
    expect(burst(4, T0 + 3_600_000, limit, state).decisions.map((d) => d.allowed)).toEqual([true, true, true, false]);
  });

  it("keeps the fill level when the rate changes", () => {
    const { state } = burst(2, T0, { rpm: 60, burst: 4 });
    // Two of four tokens used; at 120 rpm the same fill level is still two tokens used.
    expect(gcraRemaining(state, T0, { rpm: 120, burst: 4 })).toBe(2);
  });

  it("refuses invalid limits", () => {
    expect(() => gcraTake(undefined, T0, { rpm: 0, burst: 1 })).toThrow(RangeError);
    expect(() => gcraTake(undefined, T0, { rpm: 10, burst: 0.5 })).toThrow(RangeError);
  });

  it("never allows more than burst + elapsed × rpm / 60 000 requests (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 200 }),
        (rpm, size, gaps) => {
          const limit = { rpm, burst: size };
          let state: GcraState | undefined;
          let now = T0;
          let allowed = 0;
          for (const gap of gaps) {
            now += gap;
            const decision = gcraTake(state, now, limit);
            state = decision.state;
            if (decision.allowed) allowed++;
            expect(decision.remaining).toBeGreaterThanOrEqual(0);
            expect(decision.remaining).toBeLessThan(size);
          }
          expect(allowed).toBeLessThanOrEqual(size + Math.floor(((now - T0) * rpm) / 60_000));
        },
      ),
      { numRuns: 200 },
    );
  });
});
