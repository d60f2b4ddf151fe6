// Child Node processes of the bench, each killed by its PID when done (and on exit, whatever happens).
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const children = new Set();
const killAll = () => {
  for (const child of children) if (child.exitCode === null && child.pid) process.kill(child.pid, "SIGKILL");
};
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** Starts `node script ...args`; resolves with the child and the first line it prints (parsed as JSON). */
export function startNode(script, args = [], { readyTimeoutMs = 15_000 } = {}) {
  const child = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const lines = createInterface({ input: child.stdout });
  const first = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script}: not ready after ${readyTimeoutMs} ms\n${stderr}`)), readyTimeoutMs);
    lines.once("line", (line) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`${script}: unexpected output ${line}\n${stderr}`));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}\n${stderr}`));
    });
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    process.kill(child.pid, "SIGTERM");
    const timer = setTimeout(() => child.exitCode === null && process.kill(child.pid, "SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
    children.delete(child);
  };
  return first.then((value) => ({ child, value, stop }));
}

/** Runs `node script ...args` to completion (bounded by `timeoutMs`) and parses the last line it prints as JSON. */
export async function runNode(script, args = [], { timeoutMs = 60_000 } = {}) {
  const child = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const timer = setTimeout(() => child.exitCode === null && process.kill(child.pid, "SIGKILL"), timeoutMs);
  const code = await new Promise((resolve) => child.once("exit", (c, signal) => resolve(c ?? signal)));
  clearTimeout(timer);
  children.delete(child);
  if (code !== 0) throw new Error(`${script} exited with ${code}\n${stderr}`);
  const last = stdout.trim().split("\n").at(-1);
  return JSON.parse(last);
}
