import { beforeEach } from "vitest";

/**
 * Keeps the worker's log lines in memory and prints them only for a test that fails.
 *
 * Why not vitest's own console capture: a line logged by a queue consumer (its own I/O context in workerd) becomes an RPC
 * that @cloudflare/vitest-plugin holds back until the test runner sends its next message. When that happens after a
 * file's last test, vitest waits for the held-back call forever (no timeout) and the run stalls with no output: the
 * stall seen twice on CI after test/integration/batches/batches.test.ts, reproduced there about 1 run in 10. Writing
 * to an array is not an RPC, so nothing is held back.
 */
const LEVELS = ["log", "info", "warn", "error", "debug"] as const;
const KEPT_LINES = 300;

type Captured = { lines: string[]; original: Pick<Console, (typeof LEVELS)[number]> };
const key = Symbol.for("smart-router-edge.quiet-logs");
const global = globalThis as { [key]?: Captured };

// Test files share one runtime (vitest.config.ts): capture once.
if (!global[key]) {
  const captured: Captured = { lines: [], original: { ...console } };
  for (const level of LEVELS) {
    const original = console[level].bind(console);
    captured.original[level] = original;
    console[level] = (...args: unknown[]) => {
      const text = args.map((arg) => (typeof arg === "string" ? arg : String(arg))).join(" ");
      captured.lines.push(level === "log" || level === "info" ? text : `[${level}] ${text}`);
      if (captured.lines.length > KEPT_LINES) captured.lines.shift();
    };
  }
  global[key] = captured;
}
const captured = global[key] as Captured;

beforeEach(({ onTestFailed }) => {
  captured.lines.length = 0;
  onTestFailed(() => {
    if (captured.lines.length === 0) return;
    captured.original.log(`worker log lines during this test (last ${KEPT_LINES} kept):\n${captured.lines.join("\n")}`);
  });
});
