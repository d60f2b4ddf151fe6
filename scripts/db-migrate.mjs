// `npm run db:migrate -- --local|--remote [flags]`: applies every migration to every D1 binding of wrangler.toml (DB,
// DB_SHARD_1, …, in file order) with `wrangler d1 migrations apply`, and says which migrations it applied to each.
// Every shard carries the whole schema (src/db/shards.ts), so a shard left out would fail on its first merchant.
// Other flags go to wrangler as they are (--persist-to DIR, --preview, --env NAME, --config PATH; the last two also choose
// the bindings read). Stops at the first binding that fails, names it and exits 1; a usage error exits 2.
import { spawn } from "node:child_process";
import { delimiter, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { readWranglerToml, WRANGLER_TOML } from "./wrangler-config.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "node_modules", ".bin");

export const USAGE = `usage: npm run db:migrate -- --local|--remote [wrangler d1 migrations apply flags]
  --local    the local D1 databases of wrangler dev (.wrangler/state; --persist-to DIR for another folder)
  --remote   the D1 databases on Cloudflare (after \`wrangler login\`)
Every D1 binding of wrangler.toml gets every migration, one binding after another, in the file's order.`;

export class UsageError extends Error {}

/** The value of `--name VALUE`, `--name=VALUE` or `-s VALUE` in `args`, or null. */
function flagValue(args, name, short) {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}` || (short && args[i] === `-${short}`)) return args[i + 1] ?? null;
    if (args[i].startsWith(`--${name}=`)) return args[i].slice(name.length + 3);
  }
  return null;
}

/**
 * What a command line asks for: `{ where: "local"|"remote", config, env, args }`, `args` being what every
 * `wrangler d1 migrations apply <binding>` gets. Throws a UsageError unless exactly one of --local / --remote is given:
 * with neither, wrangler would pick a default (local in wrangler 4, remote in 3), and the remote one is not to be guessed.
 */
export function parseMigrateArgs(argv) {
  const local = argv.includes("--local");
  const remote = argv.includes("--remote");
  if (local === remote)
    throw new UsageError(
      local ? "--local and --remote together: choose one" : "neither --local nor --remote: say which databases to migrate",
    );
  return {
    where: local ? "local" : "remote",
    // wrangler runs in the project folder (as under npm), so a relative --config is read from there too.
    config: resolve(ROOT, flagValue(argv, "config", "c") ?? WRANGLER_TOML),
    env: flagValue(argv, "env", "e"),
    args: argv,
  };
}

/**
 * The migrations `wrangler d1 migrations apply` says it applied, from its output: the names in its "Migrations to be
 * applied" table (all of them when it exits 0); [] for "No migrations to apply"; null when the output has neither.
 */
export function appliedMigrations(output) {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colour codes.
  const text = output.replace(/\x1b\[[0-9;]*m/g, "");
  if (/No migrations to apply/.test(text)) return [];
  const start = text.indexOf("Migrations to be applied");
  if (start < 0) return null;
  const end = text.indexOf("└", start);
  return [...text.slice(start, end < 0 ? undefined : end).matchAll(/│\s*(\S+?)\s*│/g)].map((m) => m[1]).filter((name) => name !== "name");
}

/**
 * Runs wrangler from PATH as npm gives it (node_modules/.bin first, so the project's wrangler on the project's Node 24).
 * Run outside npm, node_modules/.bin is put first: wrangler needs Node ≥ 22 and the system Node may be 20
 * (../shared/platform.md). A PATH that already holds node_modules/.bin is kept as it is, so a stand-in wrangler placed
 * before it (the tests) is the one run.
 */
export function wranglerEnv() {
  const path = process.env.PATH ?? "";
  return {
    ...process.env,
    PATH: path.split(delimiter).includes(BIN) ? path : `${BIN}${delimiter}${path}`,
    WRANGLER_SEND_METRICS: process.env.WRANGLER_SEND_METRICS ?? "false",
  };
}

/**
 * One `wrangler d1 migrations apply`: its stdout kept (wrangler prints a table per migration; the summary says it
 * shorter), its stderr shown as it comes (warnings, errors, a login prompt's text). With stdout a pipe wrangler does not
 * ask "continue?": it takes yes, as in CI; running this command is the operator's yes.
 */
function applyTo(binding, args) {
  return new Promise((done) => {
    const child = spawn("wrangler", ["d1", "migrations", "apply", binding, ...args], {
      cwd: ROOT,
      env: wranglerEnv(),
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
    });
    child.once("error", (error) => done({ code: error.code === "ENOENT" ? "wrangler not found" : error.message, output }));
    child.once("close", (code, signal) => done({ code: code ?? signal, output }));
  });
}

const last = (text, lines) => text.trimEnd().split("\n").slice(-lines).join("\n");

/** The whole run; answers the exit code. */
export async function main(argv, say = console.log, complain = console.error) {
  if (argv.includes("--help") || argv.includes("-h")) {
    say(USAGE);
    return 0;
  }
  let request;
  let bindings;
  try {
    request = parseMigrateArgs(argv);
    bindings = readWranglerToml(request.config, { env: request.env }).d1Bindings;
  } catch (error) {
    complain(`db:migrate: ${error.message}\n${USAGE}`);
    return 2;
  }
  const where = `${request.env ? `[env.${request.env}] of ` : ""}${relative(ROOT, request.config) || request.config}`;
  if (bindings.length === 0) {
    complain(`db:migrate: ${where} lists no [[d1_databases]] binding`);
    return 1;
  }
  say(`db:migrate (${request.where}): ${bindings.join(", ")} from ${where}`);
  const summary = [];
  for (const [index, binding] of bindings.entries()) {
    const { code, output } = await applyTo(binding, request.args);
    if (code !== 0) {
      if (output.trim()) complain(`end of wrangler's output for ${binding}:\n${last(output, 40)}`);
      const done = summary.length ? ` Done before it: ${summary.join("; ")}.` : "";
      const left = bindings.slice(index + 1);
      complain(
        `db:migrate: ${binding} failed (wrangler d1 migrations apply ${binding}: ${code}).${done}${left.length ? ` Not attempted: ${left.join(", ")}.` : ""}`,
      );
      return 1;
    }
    const applied = appliedMigrations(output);
    let line;
    if (applied === null) line = `${binding}: done (wrangler did not list the migrations; it said: ${last(output, 1).trim()})`;
    else if (applied.length === 0) line = `${binding}: nothing to apply, up to date`;
    else line = `${binding}: applied ${applied.length}: ${applied.join(", ")}`;
    say(line);
    summary.push(applied === null ? `${binding} done` : `${binding} ${applied.length} applied`);
  }
  say(`db:migrate: every binding is up to date (${summary.join(", ")})`);
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
