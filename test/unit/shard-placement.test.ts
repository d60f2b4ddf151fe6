import { describe, expect, it } from "vitest";
import { capacityCheck } from "../../src/alerts/shard-capacity";
import { daysToFull, growthPerDay } from "../../src/db/shard-growth";
import { choosePlacement, type PlacementCandidate } from "../../src/db/shards";

/** Issue 21: the pure parts of placement by free bytes, days to full and the capacity thresholds. */

const CAPACITY = 1_000_000;
const shard = (index: number, bytes: number | undefined, merchants = 0, ok = true): PlacementCandidate => ({ index, ok, bytes, merchants });

describe("placement by free bytes", () => {
  it("chooses the shard with the most free bytes, whatever the merchant counts", () => {
    expect(choosePlacement([shard(0, 500_000, 1), shard(1, 300_000, 9)], CAPACITY)).toBe(1);
    expect(choosePlacement([shard(0, 100_000, 9), shard(1, 300_000, 1), shard(2, 200_000, 0)], CAPACITY)).toBe(0);
  });

  it("breaks a tie within 1 % of capacity by the fewest merchants, then the lowest index", () => {
    expect(choosePlacement([shard(0, 305_000, 4), shard(1, 300_000, 2)], CAPACITY)).toBe(1);
    expect(choosePlacement([shard(0, 300_000, 2), shard(1, 309_999, 1)], CAPACITY)).toBe(1);
    expect(choosePlacement([shard(0, 300_000, 2), shard(1, 310_001, 1)], CAPACITY)).toBe(0);
    expect(choosePlacement([shard(0, 300_000, 3), shard(1, 300_000, 3)], CAPACITY)).toBe(0);
  });

  it("skips a shard past 80 % and a failing one; none left is undefined", () => {
    expect(choosePlacement([shard(0, 800_001, 0), shard(1, 790_000, 50)], CAPACITY)).toBe(1);
    expect(choosePlacement([shard(0, 800_000, 0)], CAPACITY)).toBe(0);
    expect(choosePlacement([shard(0, 100, 0, false), shard(1, 700_000, 50)], CAPACITY)).toBe(1);
    expect(choosePlacement([shard(0, 800_001), shard(1, 100, 0, false)], CAPACITY)).toBeUndefined();
    expect(choosePlacement([], CAPACITY)).toBeUndefined();
  });
});

describe("days to full", () => {
  const at = (day: number) => new Date(Date.UTC(2026, 0, 1) + day * 86_400_000).toISOString();

  it("is the growth from the oldest to the newest sample, in any order", () => {
    const samples = [
      { sampledAt: at(6), bytes: 700 },
      { sampledAt: at(0), bytes: 100 },
      { sampledAt: at(3), bytes: 9_000 },
    ];
    expect(growthPerDay(samples)).toBe(100);
    expect(daysToFull({ bytes: 1_000, capacityBytes: 2_000, growth: 100 })).toBe(10);
    expect(daysToFull({ bytes: 1_000, capacityBytes: 1_350, growth: 100 })).toBe(3.5);
  });

  it("is null with fewer than 2 samples, none apart in time, no growth, or no size", () => {
    expect(growthPerDay([])).toBeNull();
    expect(growthPerDay([{ sampledAt: at(0), bytes: 1 }])).toBeNull();
    expect(
      growthPerDay([
        { sampledAt: at(0), bytes: 1 },
        { sampledAt: at(0), bytes: 5 },
      ]),
    ).toBeNull();
    expect(
      growthPerDay([
        { sampledAt: at(0), bytes: 5 },
        { sampledAt: at(2), bytes: 5 },
      ]),
    ).toBeNull();
    expect(
      growthPerDay([
        { sampledAt: at(0), bytes: 5 },
        { sampledAt: at(2), bytes: 4 },
      ]),
    ).toBeNull();
    expect(daysToFull({ bytes: null, capacityBytes: 2_000, growth: 100 })).toBeNull();
    expect(daysToFull({ bytes: 1_000, capacityBytes: 2_000, growth: null })).toBeNull();
    expect(daysToFull({ bytes: 3_000, capacityBytes: 2_000, growth: 100 })).toBe(0);
  });
});

describe("capacity thresholds", () => {
  const holding = (bytes: number) => capacityCheck({ index: 1, bytes, capacityBytes: CAPACITY }).holding.map((alert) => alert.subject);

  it("holds one subject per threshold passed, and clears the others", () => {
    expect(holding(800_000)).toEqual([]);
    expect(holding(800_001)).toEqual(["DB_SHARD_1:80"]);
    expect(holding(900_001)).toEqual(["DB_SHARD_1:80", "DB_SHARD_1:90"]);
    expect(holding(950_001)).toEqual(["DB_SHARD_1:80", "DB_SHARD_1:90", "DB_SHARD_1:95"]);
    expect(capacityCheck({ index: 0, bytes: 910_000, capacityBytes: CAPACITY }).cleared).toEqual(["DB:95"]);
  });
});
