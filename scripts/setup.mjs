// `npm run setup [-- --dry-run] [--config PATH] [--no-deploy]`: from a clean clone to a deployed worker in one command.
// Reads wrangler.toml and creates on the Cloudflare account what is missing — a D1 database per shard binding, every
// queue and dead-letter queue, the R2 bucket, the secrets ADMIN_TOKEN and SECRETS_KEY (generated) — with wrangler's own
// commands; writes the databases' ids into wrangler.toml; migrates every shard (`npm run db:migrate -- --remote`); deploys
// (wrangler builds the console and /docs first: wrangler.toml `[build]`). A second run finds everything and creates
// nothing. `--dry-run` prints the plan and changes nothing (it only lists what exists).
//
// Why not wrangler 4.155's own provisioning on deploy (hidden `--x-provision`, on by default)? It creates D1 databases
// and queues without a jurisdiction, creates no dead-letter queue (deploy then stops: "Queue … does not exist"), sets no
// secret, runs at deploy time (after the migrations that must come first), and writes ids back only when interactive. So
// setup creates everything before the deploy, and the deploy's provisioning finds nothing left to do.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { main as migrate, wranglerEnv } from "./db-migrate.mjs";
import { fieldValue, parseWranglerTables, WRANGLER_TOML } from "./wrangler-config.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

export const USAGE = `usage: npm run setup -- [--dry-run] [--config PATH] [--no-deploy]
  --dry-run    print the plan, step by step, and change nothing (wrangler is asked only what exists)
  --config     another wrangler.toml (default: the project's)
  --no-deploy  create what is missing and migrate, but do not deploy
Needs \`npx wrangler login\` (or CLOUDFLARE_API_TOKEN). Generated secrets are printed once and kept in
.wrangler/deploy-secrets/<worker>.json next to the config (git-ignored).`;

/** The Worker secrets setup generates when the Worker lacks them (shared/contract.md, Configuration). */
export const GENERATED_SECRETS = {
  ADMIN_TOKEN: () => randomBytes(24).toString("base64url"),
  SECRETS_KEY: () => randomBytes(32).toString("base64"),
};

/** What D1, R2 and Queues accept as `--jurisdiction` (wrangler 4.155's choices). */
const JURISDICTIONS = ["eu", "us", "fedramp"];

export class SetupError extends Error {}

/**
 * What wrangler.toml asks for (top level only; `[env.*]` tables are not provisioned): the Worker's name, the D1
 * bindings (name, id, the lines they sit on), every queue (producers, consumers and their dead-letter queues, once each,
 * in file order), the R2 buckets, and the jurisdiction: the `jurisdiction` of the R2 bindings, which setup also gives to
 * the D1 databases and queues it creates.
 */
export function resourcesOf(text) {
  const tables = parseWranglerTables(text);
  const of = (name) => tables.filter((t) => t.table === `[[${name}]]`);
  const d1 = of("d1_databases").map((t) => ({
    binding: fieldValue(t, "binding"),
    name: fieldValue(t, "database_name"),
    id: fieldValue(t, "database_id"),
    table: t,
  }));
  const queueNames = [
    ...of("queues.producers").map((t) => fieldValue(t, "queue")),
    ...of("queues.consumers").flatMap((t) => [fieldValue(t, "queue"), fieldValue(t, "dead_letter_queue")]),
  ].filter((name) => name !== null);
  const buckets = of("r2_buckets").map((t) => ({ binding: fieldValue(t, "binding"), name: fieldValue(t, "bucket_name") }));
  const jurisdictions = [...new Set(of("r2_buckets").map((t) => fieldValue(t, "jurisdiction")))];
  if (jurisdictions.length > 1)
    throw new SetupError(`the R2 bindings name different jurisdictions (${jurisdictions.join(", ")}): choose one`);
  const jurisdiction = jurisdictions[0] ?? null;
  if (jurisdiction !== null && !JURISDICTIONS.includes(jurisdiction))
    throw new SetupError(`jurisdiction "${jurisdiction}" is not one of ${JURISDICTIONS.join(", ")}`);
  for (const db of d1) if (!db.binding || !db.name) throw new SetupError(`a [[d1_databases]] table needs binding and database_name`);
  for (const bucket of buckets) if (!bucket.name) throw new SetupError(`the R2 binding ${bucket.binding} needs a bucket_name`);
  return { worker: fieldValue(tables[0], "name"), d1, queues: [...new Set(queueNames)], buckets, jurisdiction };
}

/**
 * wrangler.toml's text with each binding's `database_id` set to `ids[binding]`: the value replaced on its own line (the
 * rest of the line, a comment, kept), or a line added after `database_name` when there is none. Nothing else changes.
 */
export function withDatabaseIds(text, d1, ids) {
  const lines = text.split("\n");
  const inserts = [];
  for (const db of d1) {
    const id = ids[db.binding];
    if (!id || id === db.id) continue;
    const field = db.table.fields.database_id;
    if (field) lines[field.line] = lines[field.line].replace(/(database_id\s*=\s*)(["'])[^"']*\2/, `$1"${id}"`);
    else inserts.push({ after: db.table.fields.database_name.line, line: `database_id = "${id}"` });
  }
  // From the bottom up, so an insertion does not move the lines of the ones above it.
  for (const { after, line } of inserts.sort((a, b) => b.after - a.after)) lines.splice(after + 1, 0, line);
  return lines.join("\n");
}

/** One wrangler command, its output kept; `input` goes to its stdin (a secret's value), `show` streams its output. */
export function wrangler(args, { config, input = null, show = false } = {}) {
  return new Promise((done) => {
    const child = spawn("wrangler", [...args, "--config", config], {
      cwd: ROOT,
      env: wranglerEnv(),
      stdio: [input === null ? "ignore" : "pipe", show ? "inherit" : "pipe", show ? "inherit" : "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr?.on("data", (chunk) => {
      stderr += chunk;
    });
    if (input !== null) child.stdin.end(input);
    child.once("error", (error) => done({ code: error.code === "ENOENT" ? "wrangler not found" : error.message, stdout, stderr }));
    child.once("close", (code, signal) => done({ code: code ?? signal, stdout, stderr }));
  });
}

/** The command line of a wrangler call, as the plan prints it. */
const shown = (args) => `wrangler ${args.join(" ")}`;
const withJurisdiction = (args, jurisdiction) => (jurisdiction ? [...args, "--jurisdiction", jurisdiction] : args);
const lastLines = (text, count = 6) => text.trimEnd().split("\n").slice(-count).join("\n");

// biome-ignore lint/suspicious/noControlCharactersInRegex: matches ANSI colour codes.
const ANSI = /\x1b\[[0-9;]*m/g;

/** A failed wrangler call as a SetupError naming the command, with the end of what wrangler said (colours stripped). */
function failure(args, result) {
  const said = lastLines(
    `${result.stdout}\n${result.stderr}`
      .replace(ANSI, "")
      .replace(/\n\s*\n/g, "\n")
      .trim(),
  );
  return new SetupError(`${shown(args)} failed (${result.code})${said ? `:\n${said}` : ""}`);
}

async function must(args, options) {
  const result = await wrangler(args, options);
  if (result.code !== 0) throw failure(args, result);
  return result;
}

/** The account's D1 databases: `Map(name → uuid)`. */
async function listDatabases(config) {
  const args = ["d1", "list", "--json"];
  const { stdout } = await must(args, { config });
  try {
    return new Map(JSON.parse(stdout).map((db) => [db.name, db.uuid]));
  } catch {
    throw new SetupError(`${shown(args)} did not answer JSON: ${lastLines(stdout, 3)}`);
  }
}

/** Whether a queue exists: `wrangler queues info` answers it, or says it "does not exist"; anything else is an error. */
async function queueExists(config, name) {
  const args = ["queues", "info", name];
  const result = await wrangler(args, { config });
  if (result.code === 0) return true;
  if (/does not exist/i.test(`${result.stdout}${result.stderr}`)) return false;
  throw failure(args, result);
}

/** The account's R2 bucket names (in the jurisdiction), from `wrangler r2 bucket list`'s `name:` lines. */
async function listBuckets(config, jurisdiction) {
  const { stdout } = await must(withJurisdiction(["r2", "bucket", "list"], jurisdiction), { config });
  return new Set([...stdout.matchAll(/^name:\s*(\S+)\s*$/gm)].map((m) => m[1]));
}

/** The Worker's secret names; none when the Worker does not exist yet (`secret put` then creates it). */
async function listSecrets(config) {
  const args = ["secret", "list", "--format", "json"];
  const result = await wrangler(args, { config });
  if (result.code !== 0 && /not found|does not exist/i.test(`${result.stdout}${result.stderr}`)) return new Set();
  if (result.code !== 0) throw failure(args, result);
  try {
    return new Set(JSON.parse(result.stdout).map((secret) => secret.name));
  } catch {
    throw new SetupError(`${shown(args)} did not answer JSON: ${lastLines(result.stdout, 3)}`);
  }
}

/** What exists on the account, one question per kind (queues: one each). */
async function inspect(config, wanted) {
  const databases = await listDatabases(config);
  const queues = new Map();
  for (const name of wanted.queues) queues.set(name, await queueExists(config, name));
  const buckets = await listBuckets(config, wanted.jurisdiction);
  const secrets = await listSecrets(config);
  return { databases, queues, buckets, secrets };
}

/**
 * The plan: every resource wrangler.toml names, each `ok` (exists) or with the wrangler command that creates it, then
 * the id write, the secrets, the migrations and the deploy. `found` null (dry run, wrangler could not tell): every
 * resource is "create if missing".
 */
export function planSteps(wanted, found, { configName, deploy = true }) {
  const j = wanted.jurisdiction;
  const steps = [];
  const resource = (what, exists, args) =>
    steps.push({ kind: "resource", what, args, state: found === null ? "unknown" : exists ? "ok" : "create" });
  for (const db of wanted.d1) {
    const id = found?.databases.get(db.name);
    resource(`D1 ${db.binding} → ${db.name}${id ? ` (${id})` : ""}`, id !== undefined, withJurisdiction(["d1", "create", db.name], j));
  }
  for (const name of wanted.queues) resource(`queue ${name}`, found?.queues.get(name), withJurisdiction(["queues", "create", name], j));
  for (const b of wanted.buckets)
    resource(`R2 ${b.binding} → ${b.name}`, found?.buckets.has(b.name), withJurisdiction(["r2", "bucket", "create", b.name], j));
  const stale = wanted.d1.filter((db) => found === null || found.databases.get(db.name) !== db.id).map((db) => db.binding);
  steps.push({
    kind: "ids",
    what: `${configName}: database_id of ${stale.join(", ") || "every binding"}`,
    state: stale.length === 0 ? "ok" : found === null ? "unknown" : "write",
    bindings: stale,
  });
  for (const name of Object.keys(GENERATED_SECRETS))
    steps.push({
      kind: "secret",
      what: `secret ${name}`,
      name,
      state: found === null ? "unknown" : found.secrets.has(name) ? "ok" : "set",
    });
  steps.push({
    kind: "migrate",
    what: `migrate ${wanted.d1.map((db) => db.binding).join(", ")}: npm run db:migrate -- --remote`,
    state: "run",
  });
  if (deploy)
    steps.push({ kind: "deploy", what: "deploy: wrangler deploy (wrangler builds the console and /docs first: [build])", state: "run" });
  return steps;
}

const STATE_WORDS = {
  ok: "exists, nothing to do",
  create: "missing: create",
  write: "write the account's ids",
  set: "missing: generate, set, show once",
  run: "run",
};
/** What a step whose need is not known (a dry run that could not ask) would do. */
const UNKNOWN_WORDS = {
  resource: "create if missing",
  ids: "write the account's ids where they differ",
  secret: "generate, set and show once if missing",
};

/** One numbered line per step, the command where one creates something. */
export function describePlan(steps) {
  return steps.map((step, index) => {
    const command = step.args && step.state !== "ok" ? ` — ${shown(step.args)}` : "";
    const words = step.state === "unknown" ? UNKNOWN_WORDS[step.kind] : STATE_WORDS[step.state];
    return `  ${index + 1}. ${step.what}: ${words}${command}`;
  });
}

/** The generated secrets not yet known to be set, kept beside the config (git-ignored) so a re-run reuses them. */
export function secretsFileFor(config, worker) {
  return join(dirname(config), ".wrangler", "deploy-secrets", `${worker}.json`);
}

function readSaved(file) {
  return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : {};
}

function writeAtomically(file, text, mode) {
  mkdirSync(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, text, mode ? { mode } : {});
  renameSync(temporary, file);
}

/**
 * Sets one missing secret: the value saved by an earlier run that failed before setting it, else a new one, saved first
 * (a crash after the put loses nothing). ADMIN_TOKEN is printed here and only here: once it is set, a later run finds it
 * and never prints it again. SECRETS_KEY is never printed (the worker alone uses it; the file keeps a copy).
 */
async function setSecret(step, { config, secretsFile, say }) {
  const saved = readSaved(secretsFile);
  const value = saved[step.name] ?? GENERATED_SECRETS[step.name]();
  if (saved[step.name] === undefined) writeAtomically(secretsFile, `${JSON.stringify({ ...saved, [step.name]: value }, null, 2)}\n`, 0o600);
  await must(["secret", "put", step.name], { config, input: value });
  const where = relative(process.cwd(), secretsFile) || secretsFile;
  if (step.name === "ADMIN_TOKEN") say(`     ADMIN_TOKEN (shown once; a copy is in ${where}): ${value}`);
  else say(`     ${step.name} set (not printed; a copy is in ${where})`);
}

/** Writes the ids the account now has for the bindings that need them (after the creates: one more `d1 list`). */
async function writeIds(step, { config, wanted, say }) {
  const databases = await listDatabases(config);
  const ids = Object.fromEntries(
    step.bindings.map((binding) => [binding, databases.get(wanted.d1.find((db) => db.binding === binding).name)]),
  );
  const missing = step.bindings.filter((binding) => !ids[binding]);
  if (missing.length) throw new SetupError(`the account lists no database for ${missing.join(", ")} after creating it`);
  writeAtomically(config, withDatabaseIds(readFileSync(config, "utf8"), wanted.d1, ids));
  say(`     ${step.bindings.map((binding) => `${binding} = ${ids[binding]}`).join(", ")}`);
}

/** Runs one step that has something to do. */
async function runStep(step, context) {
  const { config, say, complain } = context;
  if (step.kind === "resource") await must(step.args, { config });
  else if (step.kind === "ids") await writeIds(step, context);
  else if (step.kind === "secret") await setSecret(step, context);
  else if (step.kind === "migrate") {
    const code = await migrate(["--remote", "--config", config], (line) => say(`     ${line}`), complain);
    if (code !== 0) throw new SetupError(`npm run db:migrate -- --remote failed (${code})`);
  } else if (step.kind === "deploy") await must(["deploy"], { config, show: true });
}

/** Runs the steps in order; stops at the first failure, naming it, what was done and how to resume. */
async function applySteps(steps, context) {
  const { say, complain } = context;
  const started = Date.now();
  const done = [];
  for (const [index, step] of steps.entries()) {
    if (step.state === "ok") continue;
    say(`  ${index + 1}. ${step.what}…`);
    try {
      await runStep(step, context);
    } catch (error) {
      if (!(error instanceof SetupError)) throw error;
      complain(`setup: step ${index + 1} (${step.what}) failed: ${error.message}`);
      complain(`Done before it: ${done.length ? done.join("; ") : "nothing"}. Run npm run setup again to resume: it keeps what exists.`);
      return 1;
    }
    done.push(step.what);
    say(`     done (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }
  say(done.length ? `setup: done (${done.length} steps)` : "setup: everything exists; nothing to do");
  return 0;
}

/** `{ dryRun, deploy, config }` of a command line; throws a SetupError on an unknown flag. */
export function parseSetupArgs(argv) {
  const options = { dryRun: false, deploy: true, config: WRANGLER_TOML };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--dry-run") options.dryRun = true;
    else if (arg === "--no-deploy") options.deploy = false;
    else if (arg === "--config" || arg === "-c") options.config = resolve(argv[++i] ?? "");
    else if (arg.startsWith("--config=")) options.config = resolve(arg.slice("--config=".length));
    else throw new SetupError(`unknown argument ${arg}`);
  }
  return options;
}

/** What the account has, or null on a dry run that could not ask (not logged in): the plan then says "if missing". */
async function inspectOrNot(options, wanted, complain) {
  try {
    return await inspect(options.config, wanted);
  } catch (error) {
    if (!(error instanceof SetupError) || !options.dryRun) throw error;
    const [first, ...rest] = error.message.split("\n");
    const reason = rest.find((line) => line.includes("[ERROR]"))?.trim() ?? "";
    complain(`setup: could not list what exists (${first}${reason ? ` ${reason}` : ""}); the plan below assumes nothing does`);
    return null;
  }
}

/** The whole run; answers the exit code (0 done, 1 a step failed, 2 a usage error). */
export async function main(argv, say = console.log, complain = console.error) {
  if (argv.includes("--help") || argv.includes("-h")) {
    say(USAGE);
    return 0;
  }
  let options;
  let wanted;
  try {
    options = parseSetupArgs(argv);
    wanted = resourcesOf(readFileSync(options.config, "utf8"));
    if (!wanted.worker) throw new SetupError("wrangler.toml has no name");
  } catch (error) {
    complain(`setup: ${error.message}\n${USAGE}`);
    return 2;
  }
  const configName = relative(process.cwd(), options.config) || options.config;
  say(`setup: ${wanted.worker} from ${configName}; jurisdiction ${wanted.jurisdiction ?? "none (Cloudflare's default placement)"}`);
  let found;
  try {
    found = await inspectOrNot(options, wanted, complain);
  } catch (error) {
    complain(`setup: ${error.message}\nNothing was changed. Logged in? (npx wrangler login, or CLOUDFLARE_API_TOKEN)`);
    return 1;
  }
  const steps = planSteps(wanted, found, { configName: basename(options.config), deploy: options.deploy });
  say(`plan${options.dryRun ? " (dry run: nothing is changed)" : ""}:`);
  for (const line of describePlan(steps)) say(line);
  if (options.dryRun) return 0;
  const secretsFile = secretsFileFor(options.config, wanted.worker);
  return applySteps(steps, { config: options.config, wanted, secretsFile, say, complain });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
