import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { appWithVars } from "../../support/app";

const PREVIOUS = "previous-admin-token-fedcba9876543210";

describe("admin API: the admin token rotates (ADMIN_TOKEN_PREVIOUS)", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });
  const rotating = appWithVars({ ADMIN_TOKEN_PREVIOUS: PREVIOUS });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  it("accepts the current and the previous token while both are set", async () => {
    for (const token of [env.ADMIN_TOKEN, PREVIOUS]) {
      const response = await rotating("/admin/audit", { headers: bearer(token) });
      expect(response.status).toBe(200);
    }
  });

  it("refuses the previous token once it is removed, and any other token", async () => {
    const rotated = appWithVars({ ADMIN_TOKEN_PREVIOUS: undefined });
    expect((await rotated("/admin/audit", { headers: bearer(PREVIOUS) })).status).toBe(401);
    expect((await rotated("/admin/audit", { headers: bearer(env.ADMIN_TOKEN) })).status).toBe(200);
    for (const token of [`${PREVIOUS}x`, PREVIOUS.slice(1), "wrong-token-wrong-token"]) {
      expect((await rotating("/admin/audit", { headers: bearer(token) })).status, token).toBe(401);
    }
    // No previous token set: an empty Bearer never matches the stand-in.
    expect((await rotated("/admin/audit", { headers: { authorization: "Bearer " } })).status).toBe(401);
  });

  it("does the same cryptographic work whichever token matches, or none", async () => {
    const work: Record<string, [number, number]> = {};
    for (const [name, token] of [
      ["current", env.ADMIN_TOKEN],
      ["previous", PREVIOUS],
      ["wrong", "wrong-token-wrong-token"],
      ["wrong length", "x"],
    ] as const) {
      const digest = vi.spyOn(crypto.subtle, "digest");
      const compare = vi.spyOn(crypto.subtle, "timingSafeEqual");
      await rotating("/admin/audit", { headers: bearer(token) });
      work[name] = [digest.mock.calls.length, compare.mock.calls.length];
      vi.restoreAllMocks();
    }
    // The presented token and both configured ones hashed; two constant-time comparisons.
    expect(work).toEqual({ current: [3, 2], previous: [3, 2], wrong: [3, 2], "wrong length": [3, 2] });
  });

  it("refuses to start with a previous token shorter than 16 characters", async () => {
    const response = await appWithVars({ ADMIN_TOKEN_PREVIOUS: "short" })("/admin/audit", { headers: bearer(env.ADMIN_TOKEN) });
    expect(response.status).toBe(500);
  });
});
