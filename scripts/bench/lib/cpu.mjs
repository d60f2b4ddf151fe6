// CPU time spent by processes, read from /proc (Linux): far steadier than throughput on a shared machine, because time
// the CPU spent on other tenants is not counted.
import { readdirSync, readFileSync } from "node:fs";
import { round } from "./stats.mjs";

const TICK_MS = 10; // USER_HZ is 100 on Linux x86_64

/** user + system CPU milliseconds of one process, or 0 once it has exited. */
function processCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return 0;
  }
}

/** Pids of the direct children of `parent` whose command name is `name`. */
export function childPids(parent, name) {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent && comm === name) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

/** Total CPU milliseconds of these pids, plus this Node process when `self` is set. */
export function cpuMs(pids, { self = false } = {}) {
  const usage = process.cpuUsage();
  const own = self ? (usage.user + usage.system) / 1000 : 0;
  return pids.reduce((sum, pid) => sum + processCpuMs(pid), own);
}

/** Share of the machine's CPU busy over `ms` (other processes, when nothing of ours runs then); null where /proc/stat is unreadable. */
export async function backgroundBusy(ms = 1000) {
  const sample = () => {
    try {
      const fields = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
      const idle = fields[3] + (fields[4] ?? 0);
      return { idle, total: fields.reduce((a, b) => a + b, 0) };
    } catch {
      return null;
    }
  };
  const a = sample();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = sample();
  if (!a || !b || b.total === a.total) return null;
  return round(1 - (b.idle - a.idle) / (b.total - a.total), 2);
}
