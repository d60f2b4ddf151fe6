import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { type AppEnv, appConfig } from "../../src/env";

/** The test env with one variable replaced: a fresh object, so appConfig's per-env cache never answers for it. */
const withApiUrl = (url: string): AppEnv => ({ ...env, SMART_ROUTER_API_URL: url });

describe("configuration: SMART_ROUTER_API_URL", () => {
  it("accepts https anywhere and plain http on a loopback host only", () => {
    for (const url of [
      "https://api.processout.com",
      "https://smart-router.sandbox",
      "http://127.0.0.1:8788",
      "http://localhost:8788/",
      "http://[::1]:8788",
    ]) {
      expect(appConfig(withApiUrl(url)).SMART_ROUTER_API_URL, url).toBe(url);
    }
  });

  it("refuses plain http to any other host, naming the variable and never a secret", () => {
    for (const url of ["http://api.processout.com", "http://10.0.0.8:8788", "http://127.0.0.1.evil.example", "ftp://api.processout.com"]) {
      let message = "";
      try {
        appConfig(withApiUrl(url));
      } catch (error) {
        message = String(error);
      }
      expect(message, url).toMatch(/^Error: invalid configuration: SMART_ROUTER_API_URL: must be an https:\/\/ URL/);
      for (const secret of [env.ADMIN_TOKEN, env.SECRETS_KEY, env.SECRETS_KEY_PREVIOUS ?? "-"]) expect(message).not.toContain(secret);
      expect(message).not.toContain(url);
    }
  });
});
