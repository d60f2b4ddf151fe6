// `npm run test:scripts`: scripts/smoke.mjs (`npm run smoke`) against the local stack of scripts/stack.mjs (the Smart
// Router emulator standing in for the real sandbox, wrangler dev for the deployed worker), as `npm start` runs it.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { merchantIdFor } from "../../scripts/smoke.mjs";
import { ROOT, startStack, stopStack } from "../../scripts/stack.mjs";

const SCRIPT = join(ROOT, "scripts", "smoke.mjs");
const run = promisify(execFile);

/** Runs `npm run smoke -- …args`; answers its exit code and output, never throwing on a failed run. */
async function smoke(args) {
  try {
    const { stdout, stderr } = await run(process.execPath, [SCRIPT, ...args], { timeout: 150_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    return { code: error.code, stdout: error.stdout ?? "", stderr: error.stderr ?? "" };
  }
}

describe("npm run smoke: refusals", () => {
  it("refuses a live project (not test-proj_…) before any call, exit 2", async () => {
    const result = await smoke(["--url", "http://127.0.0.1:9", "--admin-token", "x", "--project", "proj_live", "--secret-key", "k"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /proj_live is not a sandbox project \(test-proj_…\): smoke never runs against a live one/);
  });

  it("names a missing option (exit 2)", async () => {
    const result = await smoke(["--url", "http://127.0.0.1:9", "--project", "test-proj_x", "--secret-key", "k"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--admin-token is required/);
  });
});

describe("npm run smoke against the local stack", { timeout: 240_000 }, () => {
  let stack;
  const project = `test-proj_smoke${Date.now().toString(36)}`;
  const secretKey = `sk_test_${crypto.randomUUID().replaceAll("-", "")}`;
  const args = () => [
    "--url",
    stack.workerUrl,
    "--admin-token",
    stack.adminToken,
    "--project",
    project,
    "--secret-key",
    secretKey,
    "--api-url",
    stack.sandboxUrl,
    "--timeout",
    "60",
  ];

  before(
    async () => {
      stack = await startStack({ name: "smoke", port: 8796, sandboxPort: 8797, timeScale: 0.05, persistTo: "smoke-state", say: () => {} });
      // The sandbox account the operator would have: a project and its key (the emulator's control API stands in).
      await stack.sandbox("/_sandbox/projects", { body: { project_id: project, secret_key: secretKey } });
    },
    { timeout: 180_000 },
  );
  after(() => stopStack());

  it("registers a merchant, wires the webhook, pays, sees the webhook applied and the fulfilment signed at the sink, then disables the merchant; a re-run reuses it", async () => {
    for (const attempt of ["first", "again"]) {
      const result = await smoke(args());
      assert.equal(result.code, 0, `${attempt}: ${result.stdout}\n${result.stderr}`);
      const steps = result.stdout.split("\n").filter((line) => line.startsWith("  ✓ "));
      assert.deepEqual(
        steps.map((line) => line.replace(/ \(\d+\.\d s\)$/, "")),
        [
          `  ✓ merchant ${merchantIdFor(project)} registered`,
          "  ✓ webhook URL given",
          "  ✓ sandbox payment created",
          "  ✓ webhook applied, fulfilment delivered",
        ],
      );
      assert.match(
        result.stdout,
        /webhook URL for the dashboard \(Settings → Webhooks\): http:\/\/[^:]+:[^@]+@127\.0\.0\.1:\d+\/webhooks\/smart-router\/smoke-/,
      );
      assert.match(result.stdout, /smoke: passed \(tr_/);
      assert.match(result.stdout, /disabled \(there is no admin delete\)/);
      const merchant = await stack.admin(`/admin/merchants/${merchantIdFor(project)}`);
      assert.equal(merchant.merchant.fulfillment_url, null);
    }
  });

  it("fails (exit 1) naming the refused call when the project's key is wrong", async () => {
    const wrong = args().map((arg) => (arg === secretKey ? "sk_test_wrong" : arg));
    const result = await smoke(wrong);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /smoke: failed: PATCH .*\/admin\/merchants\/smoke-.* → 4\d\d/);
  });
});
