// The capacity projection's arithmetic (scripts/capacity.mjs).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

const { bytesAfter, measuredBytes, PLACEMENT_LIMIT, project } = await import("../../scripts/capacity.mjs");

const traffic = { paymentsPerDay: 1_000, live: 5_000, kept: 1_000, retentionDays: 30 };

describe("bytesAfter", () => {
  it("weighs the retention window's payments live and every older one kept", () => {
    assert.equal(bytesAfter(traffic, 10), 10 * 1_000 * 5_000);
    assert.equal(bytesAfter(traffic, 30), 30 * 1_000 * 5_000);
    assert.equal(bytesAfter(traffic, 100), 30 * 1_000 * 5_000 + 70 * 1_000 * 1_000);
  });
});

describe("project", () => {
  const base = { merchants: 100, paymentsPerMerchantDay: 10_000, live: 5_000, kept: 1_000, retentionDays: 30, days: 365, capacityBytes: 10e9 };

  it("counts each shard for the placement limit and finds the day the configured shards fill", () => {
    const p = project({ ...base, shards: 2 });
    assert.equal(p.paymentsPerDay, 1_000_000);
    // 30 days × 1 M × 5 KB + 335 days × 1 M × 1 KB = 150 GB + 335 GB.
    assert.equal(p.bytes, 485e9);
    assert.equal(p.shardsNeeded, Math.ceil(485e9 / (10e9 * PLACEMENT_LIMIT)));
    // 2 shards hold 16 GB usable: 1 M × 5 KB = 5 GB a day fills them on day 4.
    assert.equal(p.fullOnDay, 4);
  });

  it("answers null when the shards never fill within the search, and at least one shard", () => {
    const p = project({ ...base, merchants: 1, paymentsPerMerchantDay: 1, shards: 2, days: 1 });
    assert.equal(p.fullOnDay, null);
    assert.equal(p.shardsNeeded, 1);
  });
});

describe("measuredBytes", () => {
  it("reads the storage section's bytes per payment, and refuses a results file without one", () => {
    const results = { date: "2026-12-07", results: { storage: { before: { bytesPerPayment: 5_900 }, after: { bytesPerPayment: 1_300 } } } };
    assert.deepEqual(measuredBytes(results), { live: 5_900, kept: 1_300, date: "2026-12-07", retentionDays: undefined });
    assert.throws(() => measuredBytes({ results: {} }), /no storage section/);
  });
});
