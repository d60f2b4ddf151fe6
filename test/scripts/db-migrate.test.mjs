// `npm run test:scripts`: scripts/db-migrate.mjs and the wrangler.toml parser it shares with the local stack
// (scripts/wrangler-config.mjs). The command runs against a stand-in `wrangler` placed first on PATH, which records each
// call and plays wrangler's answers, so no database is touched and no network is needed.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { appliedMigrations, parseMigrateArgs, UsageError } from "../../scripts/db-migrate.mjs";
import { parseWranglerToml, readWranglerToml } from "../../scripts/wrangler-config.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SCRIPT = join(ROOT, "scripts", "db-migrate.mjs");
const BIN = join(ROOT, "node_modules", ".bin");

/** A wrangler.toml with what the parser must tell apart: other tables' `binding`, comments, an environment, a `#` in a cron. */
const TOML = `
name = "x"
main = "src/index.ts"

[[r2_buckets]]
binding = "ARCHIVE"

[[d1_databases]]
binding = "DB" # the first shard
database_name = "x"
migrations_dir = "migrations"

[[queues.producers]]
binding = "WEBHOOKS"
queue = "q"

# [[d1_databases]]
# binding = "COMMENTED_OUT"

[[d1_databases]]
database_name = "x-shard-1"
binding = 'DB_SHARD_1'

[triggers]
crons = [
  "*/5 * * * *", # every five minutes
  "0 9 * * 1#2",
]

[[d1_databases]]
binding = "DB_SHARD_2"

[env.staging]
name = "x-staging"

[[env.staging.d1_databases]]
binding = "DB"
database_name = "x-staging"

[env.staging.triggers]
crons = ["0 * * * *"]
`;

describe("wrangler.toml parsing", () => {
  it("lists the [[d1_databases]] bindings in file order and the crons, nothing else", () => {
    assert.deepEqual(parseWranglerToml(TOML), { d1Bindings: ["DB", "DB_SHARD_1", "DB_SHARD_2"], crons: ["*/5 * * * *", "0 9 * * 1#2"] });
  });

  it("reads an environment's own tables with env", () => {
    assert.deepEqual(parseWranglerToml(TOML, { env: "staging" }), { d1Bindings: ["DB"], crons: ["0 * * * *"] });
    assert.deepEqual(parseWranglerToml(TOML, { env: "production" }), { d1Bindings: [], crons: [] });
  });

  it("reads the project's wrangler.toml: DB first, then the shards", () => {
    const { d1Bindings, crons } = readWranglerToml();
    assert.equal(d1Bindings[0], "DB");
    assert.ok(d1Bindings.includes("DB_SHARD_1"));
    assert.ok(crons.length > 0);
  });
});

describe("arguments", () => {
  it("wants exactly one of --local and --remote", () => {
    assert.throws(() => parseMigrateArgs([]), UsageError);
    assert.throws(() => parseMigrateArgs(["--persist-to", "x"]), UsageError);
    assert.throws(() => parseMigrateArgs(["--local", "--remote"]), UsageError);
    assert.equal(parseMigrateArgs(["--local"]).where, "local");
    assert.equal(parseMigrateArgs(["--remote"]).where, "remote");
  });

  it("passes every argument through and reads --config and --env in each spelling", () => {
    const parsed = parseMigrateArgs(["--remote", "--env=staging", "-c", "/tmp/other.toml", "--preview"]);
    assert.deepEqual(parsed, {
      where: "remote",
      config: "/tmp/other.toml",
      env: "staging",
      args: ["--remote", "--env=staging", "-c", "/tmp/other.toml", "--preview"],
    });
    assert.equal(parseMigrateArgs(["--local", "--config", "/tmp/a.toml", "-e", "dev"]).env, "dev");
    assert.equal(parseMigrateArgs(["--local"]).config, join(ROOT, "wrangler.toml"));
  });
});

describe("wrangler's output", () => {
  it("names the migrations of the 'to be applied' table; [] when up to date; null when it cannot tell", () => {
    const output = [
      "Migrations to be applied:",
      "┌──────────────────┐",
      "│ name             │",
      "├──────────────────┤",
      "│ 0000_a.sql       │",
      "├──────────────────┤",
      "│ 0001_b.sql       │",
      "└──────────────────┘",
      "? About to apply 2 migration(s)",
      "┌────────────┬────────┐",
      "│ 0000_a.sql │ ✅     │",
      "└────────────┴────────┘",
    ].join("\n");
    assert.deepEqual(appliedMigrations(output), ["0000_a.sql", "0001_b.sql"]);
    assert.deepEqual(appliedMigrations("\u001b[32m✅ No migrations to apply!\u001b[0m"), []);
    assert.equal(appliedMigrations("something else"), null);
  });
});

describe("npm run db:migrate", () => {
  let dir;
  let config;
  let calls;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "db-migrate-"));
    config = join(dir, "wrangler.toml");
    calls = join(dir, "calls.jsonl");
    writeFileSync(config, TOML);
    // The stand-in: records its argv, fails for the binding named by STANDIN_FAIL, is up to date for STANDIN_CURRENT.
    const standIn = join(dir, "wrangler");
    writeFileSync(
      standIn,
      `#!/usr/bin/env node
const fs = require("node:fs");
const args = process.argv.slice(2);
fs.appendFileSync(process.env.STANDIN_CALLS, JSON.stringify(args) + "\\n");
const binding = args[3];
if (binding === process.env.STANDIN_FAIL) { console.error("✘ [ERROR] no such table: d1_migrations"); process.exit(7); }
if (binding === process.env.STANDIN_CURRENT) { console.log("✅ No migrations to apply!"); process.exit(0); }
console.log("Migrations to be applied:\\n┌────┐\\n│ name │\\n├────┤\\n│ 0000_" + binding + ".sql │\\n├────┤\\n│ 0001_more.sql │\\n└────┘");
`,
    );
    chmodSync(standIn, 0o755);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs the command with the stand-in first on PATH (node_modules/.bin after it, as under npm). */
  function migrate(args, env = {}) {
    rmSync(calls, { force: true });
    const run = spawnSync(process.execPath, [SCRIPT, ...args], {
      encoding: "utf8",
      env: { ...process.env, PATH: [dir, BIN, process.env.PATH].join(delimiter), STANDIN_CALLS: calls, ...env },
    });
    const recorded = existsSync(calls)
      ? readFileSync(calls, "utf8")
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line))
      : [];
    return { code: run.status, stdout: run.stdout, stderr: run.stderr, calls: recorded };
  }

  it("applies the migrations to every binding in order, --local and the other flags passed through, and says what it applied", () => {
    const run = migrate(["--local", "--persist-to", join(dir, "state"), "--config", config], { STANDIN_CURRENT: "DB_SHARD_1" });
    assert.equal(run.code, 0, run.stderr);
    const passed = ["--local", "--persist-to", join(dir, "state"), "--config", config];
    assert.deepEqual(run.calls, [
      ["d1", "migrations", "apply", "DB", ...passed],
      ["d1", "migrations", "apply", "DB_SHARD_1", ...passed],
      ["d1", "migrations", "apply", "DB_SHARD_2", ...passed],
    ]);
    assert.match(run.stdout, /^DB: applied 2: 0000_DB\.sql, 0001_more\.sql$/m);
    assert.match(run.stdout, /^DB_SHARD_1: nothing to apply, up to date$/m);
    assert.match(run.stdout, /^DB_SHARD_2: applied 2: 0000_DB_SHARD_2\.sql, 0001_more\.sql$/m);
    assert.match(run.stdout, /every binding is up to date \(DB 2 applied, DB_SHARD_1 0 applied, DB_SHARD_2 2 applied\)/);
  });

  it("passes --remote through, and an environment's bindings are the ones migrated", () => {
    const run = migrate(["--remote", "--config", config, "--env", "staging"]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.calls, [["d1", "migrations", "apply", "DB", "--remote", "--config", config, "--env", "staging"]]);
  });

  it("stops at a failing binding, names it, and leaves the later ones alone", () => {
    const run = migrate(["--remote", "--config", config], { STANDIN_FAIL: "DB_SHARD_1" });
    assert.equal(run.code, 1);
    assert.deepEqual(
      run.calls.map((call) => call[3]),
      ["DB", "DB_SHARD_1"],
    );
    assert.match(run.stderr, /db:migrate: DB_SHARD_1 failed \(wrangler d1 migrations apply DB_SHARD_1: 7\)/);
    assert.match(run.stderr, /Done before it: DB 2 applied\./);
    assert.match(run.stderr, /Not attempted: DB_SHARD_2\./);
    assert.match(run.stderr, /no such table: d1_migrations/);
  });

  it("without --local or --remote: a usage error (exit 2), wrangler never run", () => {
    const run = migrate(["--config", config]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /usage: npm run db:migrate -- --local\|--remote/);
    assert.deepEqual(run.calls, []);
  });

  it("a config without D1 bindings is an error, not a silent success", () => {
    const empty = join(dir, "empty.toml");
    writeFileSync(empty, 'name = "x"\n');
    const run = migrate(["--local", "--config", empty]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /lists no \[\[d1_databases\]\] binding/);
    assert.deepEqual(run.calls, []);
  });
});
