import { describe, expect, it } from "vitest";
import {
  admit,
  BACKLOG_WINDOW_MINUTES,
  backlogLimit,
  backlogOf,
  MIN_BACKLOG_LIMIT,
  minuteOf,
  newBacklog,
  QUEUE_SHARE,
  settle,
} from "../../src/ingest/backlog";

const now = minuteOf("2026-12-07T05:00:30Z");

describe("backlog: the edge's count of unverified deliveries per merchant", () => {
  it("admits up to the limit, refuses past it, and admits again once the consumer settles some", () => {
    const state = newBacklog();
    for (let i = 0; i < 3; i++) expect(admit(state, 3, now, now)).toBe("queue");
    expect(admit(state, 3, now, now)).toBe("refuse");
    settle(state, [[now, 2]], now);
    expect(backlogOf(state, now)).toBe(1);
    expect(admit(state, 3, now, now)).toBe("queue");
    expect(admit(state, 3, now, now)).toBe("queue");
    expect(admit(state, 3, now, now)).toBe("refuse");
  });

  it(`forgets deliveries received more than ${BACKLOG_WINDOW_MINUTES} minutes ago (a lost settle report heals)`, () => {
    const state = newBacklog();
    for (let i = 0; i < 5; i++) admit(state, 5, now, now);
    expect(admit(state, 5, now, now)).toBe("refuse");
    expect(backlogOf(state, now + BACKLOG_WINDOW_MINUTES - 1)).toBe(5);
    expect(backlogOf(state, now + BACKLOG_WINDOW_MINUTES)).toBe(0);
    expect(admit(state, 5, now + BACKLOG_WINDOW_MINUTES, now + BACKLOG_WINDOW_MINUTES)).toBe("queue");
  });

  it("never counts more out than came in, and ignores reports for minutes it does not hold", () => {
    const state = newBacklog();
    admit(state, 10, now, now);
    admit(state, 10, now - 1, now);
    settle(
      state,
      [
        [now, 7],
        [now - 5, 3],
      ],
      now,
    );
    expect(backlogOf(state, now)).toBe(1);
    admit(state, 10, now, now);
    expect(backlogOf(state, now)).toBe(2);
  });

  it("sends a merchant's deliveries past its queue share to its parking, then back to the queue once it drains", () => {
    const state = newBacklog();
    const verdicts = Array.from({ length: QUEUE_SHARE + 3 }, () => admit(state, 1_000, now, now));
    expect(verdicts.slice(0, QUEUE_SHARE).every((verdict) => verdict === "queue")).toBe(true);
    expect(verdicts.slice(QUEUE_SHARE)).toEqual(["park", "park", "park"]);
    expect(backlogOf(state, now)).toBe(QUEUE_SHARE + 3);
    settle(state, [[now, 4]], now);
    expect(admit(state, 1_000, now, now)).toBe("queue");
  });

  it("sizes the limit to ten minutes of the quota fetch-backs spend, never under the floor", () => {
    expect(backlogLimit("proj_live", { events_rpm: 300 })).toBe(3_000);
    expect(backlogLimit("proj_live", { events_rpm: 50, sandbox_rpm: 100_000 })).toBe(MIN_BACKLOG_LIMIT);
    expect(backlogLimit("test-proj_sandbox", { events_rpm: 50, sandbox_rpm: 600 })).toBe(6_000);
    // Defaults: 3,000 events rpm and 1,200 sandbox rpm (rate-limiter/pacer.ts).
    expect(backlogLimit("proj_live", null)).toBe(30_000);
    expect(backlogLimit("test-proj_sandbox", undefined)).toBe(12_000);
  });
});
