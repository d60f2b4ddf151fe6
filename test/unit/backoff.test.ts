import { describe, expect, it } from "vitest";
import {
  BATCH_UNIT_RETRY,
  FULFILMENT_RETRY,
  MAX_QUEUE_DELAY_SECONDS,
  policyDelaySeconds,
  type RetryPolicy,
  retryDelaySeconds,
  VERIFICATION_RETRY,
} from "../../src/queue/backoff";
import { restOf } from "../../src/queue/messages";

const DAY_S = 24 * 3600;

/** The tries a policy makes before its horizon, with the longest jitter (the slowest schedule). */
function schedule(policy: RetryPolicy) {
  const delays: number[] = [];
  let elapsed = 0;
  for (let attempt = 1; elapsed * 1000 < policy.horizonMs; attempt++) {
    const delay = policyDelaySeconds(policy, attempt, { random: () => 1 });
    delays.push(delay);
    elapsed += delay;
  }
  return { delays, elapsed, tries: delays.length + 1 };
}

describe("retry backoff", () => {
  it("grows exponentially with jitter and a cap", () => {
    expect(retryDelaySeconds(1, null, () => 0)).toBe(1);
    expect(retryDelaySeconds(4, null, () => 0)).toBe(8);
    expect(retryDelaySeconds(4, null, () => 1)).toBe(16);
    expect(retryDelaySeconds(30, null, () => 1)).toBe(300);
  });

  it("respects a server's hint as a floor", () => {
    expect(retryDelaySeconds(1, 20_000, () => 0)).toBe(20);
    expect(retryDelaySeconds(1, 1, () => 0)).toBe(1);
    expect(policyDelaySeconds(VERIFICATION_RETRY, 1, { hintMs: 90_000, random: () => 0 })).toBe(90);
  });
});

describe("the production retry schedules", () => {
  it("verification lasts as long as Smart Router's own retries (3 days) and never waits more than 10 minutes", () => {
    expect(VERIFICATION_RETRY.horizonMs).toBe(3 * DAY_S * 1000);
    const { delays, elapsed, tries } = schedule(VERIFICATION_RETRY);
    expect(Math.max(...delays)).toBeLessThanOrEqual(660);
    expect(delays.slice(0, 4)).toEqual([2, 4, 8, 16]);
    expect(elapsed).toBeGreaterThanOrEqual(3 * DAY_S);
    expect(tries).toBeGreaterThan(12);
  });

  it("fulfilment goes seconds, minutes, then hours, and ends past 3 days with at least 12 tries", () => {
    const { delays, elapsed, tries } = schedule(FULFILMENT_RETRY);
    expect(delays[0]).toBeLessThanOrEqual(5);
    expect(delays[1]).toBeGreaterThanOrEqual(270);
    expect(delays[3]).toBeGreaterThanOrEqual(2 * 3600 * 0.9);
    expect(Math.max(...delays)).toBeLessThanOrEqual(MAX_QUEUE_DELAY_SECONDS);
    expect(elapsed).toBeGreaterThanOrEqual(3 * DAY_S);
    expect(tries).toBeGreaterThanOrEqual(12);
  });

  it("a batch unit gives up after a day", () => {
    expect(BATCH_UNIT_RETRY.horizonMs).toBe(DAY_S * 1000);
  });

  it("scales delays for tests, never below one second", () => {
    expect(policyDelaySeconds(FULFILMENT_RETRY, 6, { scale: 0.001, random: () => 0.5 })).toBe(27);
    expect(policyDelaySeconds(FULFILMENT_RETRY, 1, { scale: 0.001 })).toBe(1);
  });
});

describe("where the rest of a refresh unit goes", () => {
  it("splits at absolute offsets: the id never grows and the same split point gives the same id", () => {
    const unit = {
      v: 1 as const,
      kind: "refresh" as const,
      unit_id: "bat_1/0",
      batch_id: "bat_1",
      run_id: null,
      merchant_id: "m",
      transaction_ids: ["tr_a", "tr_b", "tr_c", "tr_d", "tr_e"],
      attempt: 3,
      first_attempt_at: "2026-12-01T00:00:00.000Z",
    };
    const rest = restOf(unit, 2);
    expect(rest).toMatchObject({ unit_id: "bat_1/0@2", transaction_ids: ["tr_c", "tr_d", "tr_e"] });
    expect(rest).not.toHaveProperty("attempt");
    const again = restOf(rest, 1);
    expect(again.unit_id).toBe("bat_1/0@3");
    expect(restOf(restOf(again, 0), 0).unit_id).toBe("bat_1/0@3");
    // Reached by another path, the same point has the same id.
    expect(restOf(unit, 3).unit_id).toBe(again.unit_id);
  });
});
