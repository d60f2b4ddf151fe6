import { afterEach, describe, expect, it, vi } from "vitest";
import {
  DEFAULT_DELIVERIES_PER_MINUTE,
  type DeliveryLimiter,
  limitDeliveries,
  REMEMBERED_ROTATIONS,
} from "../../src/ingest/delivery-limit";
import { DELIVERY_LIMIT_UNIT } from "../../src/merchants/schemas";

/** A limiter that allows everything and records every key it was asked about. */
function recordingLimiter() {
  const keys: string[] = [];
  const limiter: DeliveryLimiter = {
    async limit({ key }) {
      keys.push(key);
      return { success: true };
    },
  };
  return { limiter, keys };
}

/** How many times each key was asked about. */
const countsOf = (keys: readonly string[]) => Map.groupBy(keys, (key) => key);

describe("delivery limit: each merchant's deliveries rotate over its own keys", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("spreads a default-limit merchant over all its keys while a custom-limit merchant's deliveries interleave", async () => {
    const { limiter, keys } = recordingLimiter();
    const defaultKeys = DEFAULT_DELIVERIES_PER_MINUTE / DELIVERY_LIMIT_UNIT;
    const rounds = 3;
    // One delivery each, alternately: the custom merchant's two keys must not steer the default merchant's rotation.
    for (let i = 0; i < defaultKeys * rounds; i++) {
      await limitDeliveries(limiter, "shop-default");
      await limitDeliveries(limiter, "shop-custom", 2 * DELIVERY_LIMIT_UNIT);
    }

    const ofDefault = countsOf(keys.filter((key) => key === "shop-default" || key.startsWith("shop-default#")));
    const expectedDefault = ["shop-default", ...Array.from({ length: defaultKeys - 1 }, (_, i) => `shop-default#${i + 1}`)];
    expect([...ofDefault.keys()].sort()).toEqual(expectedDefault.sort());
    for (const [key, calls] of ofDefault) expect(calls.length, key).toBe(rounds);

    const ofCustom = countsOf(keys.filter((key) => key === "shop-custom" || key.startsWith("shop-custom#")));
    expect(Object.fromEntries([...ofCustom].map(([key, calls]) => [key, calls.length]))).toEqual({
      "shop-custom": (defaultKeys * rounds) / 2,
      "shop-custom#1": (defaultKeys * rounds) / 2,
    });
  });

  it("keeps one key for a merchant whose limit is one unit", async () => {
    const { limiter, keys } = recordingLimiter();
    for (let i = 0; i < 5; i++) {
      await limitDeliveries(limiter, "shop-single", DELIVERY_LIMIT_UNIT);
      await limitDeliveries(limiter, "shop-other");
    }
    expect(keys.filter((key) => key.startsWith("shop-single"))).toEqual(Array(5).fill("shop-single"));
  });

  it(`remembers at most ${REMEMBERED_ROTATIONS} merchants' rotations, forgetting the least recently seen`, async () => {
    // Every new rotation starts at key 0, so a forgotten merchant is told apart from a remembered one.
    vi.spyOn(Math, "random").mockReturnValue(0);
    const { limiter, keys } = recordingLimiter();
    await limitDeliveries(limiter, "shop-idle");
    await limitDeliveries(limiter, "shop-idle");
    await limitDeliveries(limiter, "shop-active");
    for (let i = 0; i < REMEMBERED_ROTATIONS - 1; i++) {
      await limitDeliveries(limiter, `shop-crowd-${i}`);
      // Seen all along, so never the least recently seen.
      if (i % 1000 === 0) await limitDeliveries(limiter, "shop-active");
    }
    keys.length = 0;
    await limitDeliveries(limiter, "shop-idle");
    await limitDeliveries(limiter, "shop-active");
    // shop-idle was forgotten and starts again; shop-active goes on from where it was.
    expect(keys[0]).toBe("shop-idle");
    expect(keys[1]).toBe(`shop-active#${1 + REMEMBERED_ROTATIONS / 1000}`);
  });

  it("refuses with 429 rate_limited and Retry-After when the merchant's key is spent", async () => {
    const refusing: DeliveryLimiter = { limit: async () => ({ success: false }) };
    await expect(limitDeliveries(refusing, "shop-flooded")).rejects.toMatchObject({
      code: "rate_limited",
      status: 429,
      headers: { "Retry-After": "60" },
    });
  });
});
