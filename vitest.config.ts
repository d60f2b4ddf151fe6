import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { createSandbox } from "./sandbox/index.ts";

// Fixed test-only secrets; real deployments set them with `wrangler secret put`.
const TEST_SECRETS = {
  ADMIN_TOKEN: "test-admin-token-0123456789abcdef",
  SECRETS_KEY: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
  // The key a rotation replaced: rows sealed with it still open, and the re-seal job moves them to SECRETS_KEY.
  SECRETS_KEY_PREVIOUS: "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=",
};

/**
 * Every outbound fetch of the worker and the tests lands on this Smart Router emulator (one per run; tests use their own
 * projects). https because src/env.ts refuses plain http to a non-loopback host; the outbound service answers either scheme.
 */
export const SANDBOX_ORIGIN = "https://smart-router.sandbox";
// Emulated delays run 1000× faster; deliveries are relayed by the tests, since this Node process cannot reach the worker.
const sandbox = createSandbox({ timeScale: 0.001, transport: "relay" });

export default defineConfig(async () => {
  // wrangler.toml's `[assets]` directory must exist before the plugin reads it; `npm test` builds it first (pretest),
  // a bare `npx vitest run` in a fresh clone builds it here.
  if (!existsSync(path.join(import.meta.dirname, "dist", "assets"))) {
    execFileSync(process.execPath, [path.join(import.meta.dirname, "scripts", "build-console.mjs")], { stdio: "inherit" });
  }
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            ...TEST_SECRETS,
            SMART_ROUTER_API_URL: SANDBOX_ORIGIN,
            TEST_MIGRATIONS: migrations,
            PROPERTY_RUNS: process.env.PROPERTY_RUNS ?? "500",
            FETCH_BACK_RECHECK_SECONDS: "1",
            // Retry schedules ×0.00002: the 3-day verification and fulfilment horizons last ~5 s, so a test reaches them.
            RETRY_SCHEDULE_SCALE: "0.00002",
            BREAKER_PROBE_INTERVAL_MS: "1000",
            // Tests that need a loopback fulfilment URL have one; the https sink of test/support/sandbox.ts needs none.
            ALLOW_LOOPBACK_FULFILLMENT_URLS: "true",
          },
          outboundService: (request: Request) => sandbox.fetch(request),
          // Replaces wrangler.toml's consumer settings in tests: restated here, with fewer retries so that
          // dead-lettering is reached within a test.
          queueConsumers: {
            "smart-router-webhooks": {
              maxBatchSize: 100,
              maxBatchTimeout: 0.2,
              maxRetries: 2,
              deadLetterQueue: "smart-router-webhooks-dlq",
            },
            "smart-router-webhooks-dlq": { maxBatchSize: 100, maxBatchTimeout: 0.2, maxRetries: 3 },
            "smart-router-fulfillments": {
              maxBatchSize: 10,
              maxBatchTimeout: 0.2,
              maxRetries: 2,
              deadLetterQueue: "smart-router-fulfillments-dlq",
            },
            "smart-router-fulfillments-dlq": { maxBatchSize: 100, maxBatchTimeout: 0.2, maxRetries: 3 },
            "smart-router-batches": { maxBatchSize: 10, maxBatchTimeout: 0.2, maxRetries: 5, deadLetterQueue: "smart-router-batches-dlq" },
            "smart-router-batches-dlq": { maxBatchSize: 100, maxBatchTimeout: 0.2, maxRetries: 3 },
            "smart-router-endpoint-messages": { maxBatchSize: 20, maxBatchTimeout: 0.2, maxRetries: 5 },
          },
        },
      }),
    ],
    test: {
      include: ["test/**/*.test.ts"],
      setupFiles: ["./test/support/apply-migrations.ts", "./test/support/quiet-logs.ts"],
      testTimeout: 30_000,
      // One workerd runtime for every file, so storage is shared by the whole run (tests use their own merchants and ids).
      isolate: false,
      fileParallelism: false,
      // Worker log lines are printed only under a failing test, by test/support/quiet-logs.ts (README, "Tests").
      silent: "passed-only" as const,
    },
  };
});
