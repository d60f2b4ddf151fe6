import { describe, expect, it } from "vitest";
import { retryDelaySeconds } from "../../src/queue/backoff";

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
  });
});
