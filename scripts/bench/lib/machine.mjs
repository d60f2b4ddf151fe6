// What machine a run measured: one description for `npm run bench` and `npm run soak`.
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { round } from "./stats.mjs";
import { ROOT } from "./worker.mjs";

/** The installed version of an npm package, or null. */
const version = (pkg) => {
  try {
    return JSON.parse(readFileSync(path.join(ROOT, "node_modules", pkg, "package.json"), "utf8")).version;
  } catch {
    return null;
  }
};

/** CPU, memory, OS, Node and the Workers runtime's versions, and the load average now. */
export const describeMachine = () => ({
  nproc: os.availableParallelism(),
  cpu: os.cpus()[0]?.model?.trim() ?? "unknown",
  memoryGiB: round(os.totalmem() / 2 ** 30, 1),
  os: `${os.type()} ${os.release()} ${os.arch()}`,
  node: process.version,
  workerd: version("workerd"),
  miniflare: version("miniflare"),
  wrangler: version("wrangler"),
  loadAverageAtStart: os.loadavg().map((v) => round(v, 2)),
});
