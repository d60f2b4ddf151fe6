/**
 * The sandbox on Node, for the local stack: `node sandbox/server.ts [--port 8788] [--host 127.0.0.1] [--time-scale 1]`.
 * Same app as in the tests, delivering webhooks itself with the global fetch. `--port 0` picks a free port.
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { serve } from "@hono/node-server";
import { createSandbox } from "./index.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8788" },
    host: { type: "string", default: "127.0.0.1" },
    "time-scale": { type: "string", default: "1" },
  },
});

const port = Number(values.port);
const timeScale = Number(values["time-scale"]);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error(`sandbox: --port must be 0..65535, got ${values.port}`);
  process.exit(2);
}
if (!Number.isFinite(timeScale) || timeScale < 0) {
  console.error(`sandbox: --time-scale must be a number >= 0, got ${values["time-scale"]}`);
  process.exit(2);
}

const sandbox = createSandbox({ timeScale });
const server = serve({ fetch: sandbox.fetch, hostname: values.host, port }, (info) => {
  // The start script reads this line for the URL.
  console.log(`Smart Router sandbox listening on http://${values.host}:${info.port}`);
});

server.on("error", (error) => {
  console.error(`sandbox: cannot listen on ${values.host}:${port}: ${error.message}`);
  process.exit(1);
});

let stopping = false;
function stop(signal: string): void {
  if (stopping) return;
  stopping = true;
  console.log(`sandbox: ${signal}, shutting down`);
  sandbox.close();
  server.close(() => process.exit(0));
  // Keep-alive connections can hold close() open; do not hang on them.
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGINT", () => stop("SIGINT"));
process.on("SIGTERM", () => stop("SIGTERM"));
