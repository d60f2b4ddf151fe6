// `npm run test:scripts`: scripts/setup.mjs (`npm run setup`) against a stand-in `wrangler` first on PATH
// (test/scripts/wrangler-stand-in.cjs), which keeps a fake Cloudflare account in a file, records every call and answers in
// wrangler's words. The config is a copy of the project's wrangler.toml, so the plan checked is the real one.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { resourcesOf, SetupError, secretsFileFor, withDatabaseIds } from "../../scripts/setup.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SCRIPT = join(ROOT, "scripts", "setup.mjs");
const BIN = join(ROOT, "node_modules", ".bin");
const PROJECT_TOML = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
/** wrangler.toml's queues in setup's order: producers, then consumer-only queues (the dead-letter queues). */
const QUEUES = [
  "smart-router-webhooks",
  "smart-router-fulfillments",
  "smart-router-batches",
  "smart-router-endpoint-messages",
  "smart-router-batches-dlq",
  "smart-router-webhooks-dlq",
  "smart-router-fulfillments-dlq",
];

/** The plan's step number of the last queue: two databases, then the queues. */
const AFTER_QUEUES = 2 + QUEUES.length;

let dir;
let config;
let files;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "setup-"));
  // Extensionless and outside any package.json of type module: node runs it as CommonJS, as PATH finds it.
  copyFileSync(join(ROOT, "test", "scripts", "wrangler-stand-in.cjs"), join(dir, "wrangler"));
  spawnSync("chmod", ["755", join(dir, "wrangler")]);
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** A fresh account and a fresh copy of the project's wrangler.toml (with `edit` applied) per test. */
function freshProject(edit = (text) => text) {
  const project = mkdtempSync(join(dir, "project-"));
  config = join(project, "wrangler.toml");
  writeFileSync(config, edit(PROJECT_TOML));
  files = { account: join(project, "account.json"), calls: join(project, "calls.jsonl") };
}

/** One `npm run setup` with the stand-in first on PATH; its calls are the ones recorded during this run. */
function setup(args = [], env = {}) {
  rmSync(files.calls, { force: true });
  const run = spawnSync(process.execPath, [SCRIPT, "--config", config, ...args], {
    encoding: "utf8",
    env: {
      ...process.env,
      PATH: [dir, BIN, process.env.PATH].join(delimiter),
      STANDIN_ACCOUNT: files.account,
      STANDIN_CALLS: files.calls,
      ...env,
    },
  });
  const calls = existsSync(files.calls)
    ? readFileSync(files.calls, "utf8")
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line))
    : [];
  // Every call names the config it was given; the plan is compared without it.
  const argv = calls.map((call) => call.args.filter((arg, i, all) => arg !== "--config" && all[i - 1] !== "--config").join(" "));
  return { code: run.status, stdout: run.stdout, stderr: run.stderr, output: run.stdout + run.stderr, calls, argv };
}

const account = () => JSON.parse(readFileSync(files.account, "utf8"));
const planLines = (stdout) => stdout.split("\n").filter((line) => /^ {2}\d+\. .*: (?!…)/.test(line) && !line.endsWith("…"));
const changing = (argv) => argv.filter((call) => / create | put |^ deploy|migrations apply/.test(` ${call}`));

describe("npm run setup --dry-run", () => {
  beforeEach(() => freshProject());

  it("prints the plan step by step for an empty account, asks only what exists, and changes nothing", () => {
    const run = setup(["--dry-run"]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(planLines(run.stdout), [
      "  1. D1 DB → smart-router-edge: missing: create — wrangler d1 create smart-router-edge",
      "  2. D1 DB_SHARD_1 → smart-router-edge-shard-1: missing: create — wrangler d1 create smart-router-edge-shard-1",
      ...QUEUES.map((q, i) => `  ${i + 3}. queue ${q}: missing: create — wrangler queues create ${q}`),
      `  ${AFTER_QUEUES + 1}. R2 ARCHIVE → smart-router-edge-archive: missing: create — wrangler r2 bucket create smart-router-edge-archive`,
      `  ${AFTER_QUEUES + 2}. wrangler.toml: database_id of DB, DB_SHARD_1: write the account's ids`,
      `  ${AFTER_QUEUES + 3}. secret ADMIN_TOKEN: missing: generate, set, show once`,
      `  ${AFTER_QUEUES + 4}. secret SECRETS_KEY: missing: generate, set, show once`,
      `  ${AFTER_QUEUES + 5}. migrate DB, DB_SHARD_1: npm run db:migrate -- --remote: run`,
      `  ${AFTER_QUEUES + 6}. deploy: wrangler deploy (wrangler builds the console and /docs first: [build]): run`,
    ]);
    assert.deepEqual(run.argv, ["d1 list --json", ...QUEUES.map((q) => `queues info ${q}`), "r2 bucket list", "secret list --format json"]);
    assert.equal(readFileSync(config, "utf8"), PROJECT_TOML);
    assert.equal(existsSync(secretsFileFor(config, "smart-router-edge")), false);
  });

  it("passes the R2 binding's jurisdiction to every create (D1, queues, R2) and to the bucket list", () => {
    freshProject((text) =>
      text.replace('bucket_name = "smart-router-edge-archive"', 'bucket_name = "smart-router-edge-archive"\njurisdiction = "eu"'),
    );
    const run = setup(["--dry-run"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /jurisdiction eu/);
    const creates = planLines(run.stdout).filter((line) => line.includes(" create "));
    assert.equal(creates.length, AFTER_QUEUES + 1);
    for (const line of creates) assert.match(line, / --jurisdiction eu$/);
    assert.ok(run.argv.includes("r2 bucket list --jurisdiction eu"));
  });

  it("not logged in: still prints the whole plan, every resource 'create if missing', and says why", () => {
    const run = setup(["--dry-run"], { STANDIN_LOGGED_OUT: "1" });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /could not list what exists \(wrangler d1 list --json failed \(1\): ✘ \[ERROR\] Not logged in\./);
    const lines = planLines(run.stdout);
    assert.equal(lines.length, AFTER_QUEUES + 6);
    assert.ok(lines.slice(0, AFTER_QUEUES + 1).every((line) => line.includes(": create if missing — wrangler ")));
  });
});

describe("npm run setup", () => {
  beforeEach(() => freshProject());

  it("creates everything, writes only the ids into wrangler.toml, migrates every shard, deploys; a second run changes nothing", () => {
    const first = setup();
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(changing(first.argv), [
      "d1 create smart-router-edge",
      "d1 create smart-router-edge-shard-1",
      ...QUEUES.map((q) => `queues create ${q}`),
      "r2 bucket create smart-router-edge-archive",
      "secret put ADMIN_TOKEN",
      "secret put SECRETS_KEY",
      "d1 migrations apply DB --remote",
      "d1 migrations apply DB_SHARD_1 --remote",
      "deploy",
    ]);
    const state = account();
    const ids = Object.fromEntries(state.databases.map((db) => [db.name, db.uuid]));
    const expected = PROJECT_TOML.replace("00000000-0000-0000-0000-000000000000", ids["smart-router-edge"]).replace(
      "00000000-0000-0000-0000-000000000001",
      ids["smart-router-edge-shard-1"],
    );
    assert.equal(readFileSync(config, "utf8"), expected);
    assert.deepEqual(Object.values(state.migrations), [
      ["0000_init.sql", "0001_more.sql"],
      ["0000_init.sql", "0001_more.sql"],
    ]);
    assert.equal(state.deploys, 1);
    const secrets = JSON.parse(readFileSync(secretsFileFor(config, "smart-router-edge"), "utf8"));
    assert.deepEqual(secrets, state.worker.secrets);
    assert.equal(statSync(secretsFileFor(config, "smart-router-edge")).mode & 0o777, 0o600);
    assert.equal(Buffer.from(secrets.SECRETS_KEY, "base64").length, 32);

    const second = setup();
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(changing(second.argv), ["d1 migrations apply DB --remote", "d1 migrations apply DB_SHARD_1 --remote", "deploy"]);
    assert.ok(
      planLines(second.stdout)
        .slice(0, 12)
        .every((line) => line.endsWith(": exists, nothing to do")),
    );
    assert.match(second.stdout, /DB: nothing to apply, up to date/);
    assert.equal(readFileSync(config, "utf8"), expected);
    assert.deepEqual(account().databases, state.databases);
    assert.deepEqual(account().worker.secrets, state.worker.secrets);

    // The admin token is shown once over both runs; the secrets key never.
    const output = first.output + second.output;
    assert.equal(output.split(secrets.ADMIN_TOKEN).length - 1, 1);
    assert.match(first.stdout, /ADMIN_TOKEN \(shown once; a copy is in .*\): \S+/);
    assert.equal(output.includes(secrets.SECRETS_KEY), false);
  });

  it("--no-deploy provisions and migrates without deploying", () => {
    const run = setup(["--no-deploy"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.argv.includes("deploy"), false);
    assert.equal(account().deploys, 0);
  });

  it("an existing database is found by name: its id is written, nothing is created for it", () => {
    writeFileSync(
      files.account,
      JSON.stringify({
        databases: [{ uuid: "11111111-2222-3333-4444-555555555555", name: "smart-router-edge" }],
        queues: [],
        buckets: [],
        worker: null,
        migrations: {},
        deploys: 0,
      }),
    );
    const run = setup(["--no-deploy"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.argv.includes("d1 create smart-router-edge"), false);
    assert.ok(run.argv.includes("d1 create smart-router-edge-shard-1"));
    assert.match(
      readFileSync(config, "utf8"),
      /database_name = "smart-router-edge"\n# .*\ndatabase_id = "11111111-2222-3333-4444-555555555555"/,
    );
  });
});

describe("npm run setup: errors", () => {
  beforeEach(() => freshProject());

  it("wrangler failing mid-way: exit 1 naming the step and what was done; nothing after it ran; a re-run resumes", () => {
    const failed = setup([], { STANDIN_FAIL: "queues create smart-router-batches" });
    assert.equal(failed.code, 1);
    assert.match(
      failed.stderr,
      /setup: step 5 \(queue smart-router-batches\) failed: wrangler queues create smart-router-batches failed \(1\):/,
    );
    assert.match(failed.stderr, /Internal server error \[code: 10001\]/);
    assert.match(
      failed.stderr,
      /Done before it: D1 DB → smart-router-edge; D1 DB_SHARD_1 → smart-router-edge-shard-1; queue smart-router-webhooks; queue smart-router-fulfillments\. Run npm run setup again to resume/,
    );
    assert.equal(changing(failed.argv).at(-1), "queues create smart-router-batches");
    assert.equal(readFileSync(config, "utf8"), PROJECT_TOML);
    assert.equal(account().deploys, 0);

    const resumed = setup();
    assert.equal(resumed.code, 0, resumed.stderr);
    const creates = changing(resumed.argv).filter((call) => call.includes(" create "));
    assert.deepEqual(creates, [...QUEUES.slice(2).map((q) => `queues create ${q}`), "r2 bucket create smart-router-edge-archive"]);
    assert.equal(account().databases.length, 2);
    assert.equal(account().deploys, 1);
  });

  it("a secret that failed to be set is not shown; the re-run sets the same value and shows it then, once", () => {
    const failed = setup([], { STANDIN_FAIL: "secret put ADMIN_TOKEN" });
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, new RegExp(`step ${AFTER_QUEUES + 3} \\(secret ADMIN_TOKEN\\) failed`));
    const saved = JSON.parse(readFileSync(secretsFileFor(config, "smart-router-edge"), "utf8"));
    assert.equal(failed.output.includes(saved.ADMIN_TOKEN), false);

    const resumed = setup();
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(account().worker.secrets.ADMIN_TOKEN, saved.ADMIN_TOKEN);
    assert.equal(resumed.output.split(saved.ADMIN_TOKEN).length - 1, 1);
  });

  it("not logged in: exit 1 before changing anything", () => {
    const run = setup([], { STANDIN_LOGGED_OUT: "1" });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /Nothing was changed\. Logged in\?/);
    assert.deepEqual(changing(run.argv), []);
  });

  it("an unknown flag is a usage error (exit 2), wrangler never run", () => {
    const run = setup(["--yes"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unknown argument --yes/);
    assert.deepEqual(run.calls, []);
  });
});

describe("wrangler.toml handling", () => {
  it("reads the project's resources: two shards, seven queues (three dead-letter), one bucket, no jurisdiction", () => {
    const wanted = resourcesOf(PROJECT_TOML);
    assert.equal(wanted.worker, "smart-router-edge");
    assert.deepEqual(
      wanted.d1.map((db) => db.binding),
      ["DB", "DB_SHARD_1"],
    );
    assert.deepEqual([...wanted.queues].sort(), [...QUEUES].sort());
    assert.deepEqual(wanted.buckets, [{ binding: "ARCHIVE", name: "smart-router-edge-archive" }]);
    assert.equal(wanted.jurisdiction, null);
  });

  it("sets an id in place (a comment on the line kept) or adds the line after database_name; nothing else moves", () => {
    const text = [
      "[[d1_databases]]",
      'binding = "DB"',
      'database_name = "a"',
      "database_id = 'old' # set by setup",
      "[[d1_databases]]",
      'binding = "DB_SHARD_1"',
      'database_name = "b"',
      'migrations_dir = "migrations"',
      "",
    ].join("\n");
    const { d1 } = resourcesOf(`name = "x"\n${text}`);
    const written = withDatabaseIds(`name = "x"\n${text}`, d1, { DB: "id-a", DB_SHARD_1: "id-b" });
    assert.equal(
      written,
      `name = "x"\n${text.replace("database_id = 'old' # set by setup", 'database_id = "id-a" # set by setup').replace('database_name = "b"', 'database_name = "b"\ndatabase_id = "id-b"')}`,
    );
  });

  it("refuses R2 bindings in different jurisdictions, and an unknown jurisdiction", () => {
    const bucket = (name, j) => `[[r2_buckets]]\nbinding = "${name}"\nbucket_name = "${name}"\njurisdiction = "${j}"\n`;
    assert.throws(() => resourcesOf(`name = "x"\n${bucket("A", "eu")}${bucket("B", "us")}`), SetupError);
    assert.throws(() => resourcesOf(`name = "x"\n${bucket("A", "mars")}`), /not one of eu, us, fedramp/);
  });
});
