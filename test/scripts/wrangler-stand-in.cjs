#!/usr/bin/env node
// A stand-in for `wrangler` on PATH (test/scripts/setup.test.mjs): the commands `npm run setup` uses, against a fake
// Cloudflare account kept in the JSON file STANDIN_ACCOUNT, answering in wrangler 4.155's words and exit codes. Every call
// is appended to STANDIN_CALLS (argv, and the stdin it was given). STANDIN_FAIL makes every call whose argv, joined by
// spaces, contains it fail like an API error (exit 1); STANDIN_LOGGED_OUT makes every call fail as without a login.
const fs = require("node:fs");

const args = process.argv.slice(2);
const stdin = process.stdin.isTTY ? "" : readStdin();
fs.appendFileSync(process.env.STANDIN_CALLS, `${JSON.stringify({ args, stdin })}\n`);

function readStdin() {
  try {
    return fs.readFileSync(0, "utf8");
  } catch {
    return "";
  }
}

const account = fs.existsSync(process.env.STANDIN_ACCOUNT)
  ? JSON.parse(fs.readFileSync(process.env.STANDIN_ACCOUNT, "utf8"))
  : { databases: [], queues: [], buckets: [], worker: null, migrations: {}, deploys: 0 };
const save = () => fs.writeFileSync(process.env.STANDIN_ACCOUNT, JSON.stringify(account, null, 2));
const fail = (message, code = 1) => {
  console.error(`\u2718 [ERROR] ${message}`);
  process.exit(code);
};
const flag = (name) => {
  const at = args.indexOf(`--${name}`);
  return at < 0 ? null : args[at + 1];
};
const config = fs.readFileSync(flag("config") ?? "wrangler.toml", "utf8");
const worker = /^name\s*=\s*"([^"]+)"/m.exec(config)[1];
/** The [[d1_databases]] tables of the config: { binding, id }. */
const d1Bindings = config
  .split("[[d1_databases]]")
  .slice(1)
  .map((table) => ({ binding: /binding\s*=\s*"([^"]+)"/.exec(table)[1], id: /database_id\s*=\s*"([^"]+)"/.exec(table)?.[1] }));

if (process.env.STANDIN_LOGGED_OUT) fail("Not logged in. Run `wrangler login` or set CLOUDFLARE_API_TOKEN.");
if (process.env.STANDIN_FAIL && args.join(" ").includes(process.env.STANDIN_FAIL)) {
  fail("A request to the Cloudflare API (/accounts/0123/…) failed.\n  Internal server error [code: 10001]");
}

const [group, verb, third] = args;
const name = group === "r2" ? args[3] : verb === "info" || verb === "create" || verb === "put" ? third : null;
const jurisdiction = flag("jurisdiction");
const uuid = () => crypto.randomUUID();

const commands = {
  "d1 list": () =>
    console.log(
      JSON.stringify(
        account.databases.map(({ uuid: id, name: n }) => ({ uuid: id, name: n, version: "production" })),
        null,
        2,
      ),
    ),
  "d1 create": () => {
    if (account.databases.some((db) => db.name === name)) fail("A database with that name already exists");
    const db = { uuid: uuid(), name, jurisdiction };
    account.databases.push(db);
    console.log(
      `\u2705 Successfully created DB '${name}' in region WEUR\nCreated your new D1 database.\n\n[[d1_databases]]\nbinding = "DB"\ndatabase_name = "${name}"\ndatabase_id = "${db.uuid}"`,
    );
  },
  "queues info": () => {
    const queue = account.queues.find((q) => q.name === name);
    if (!queue) fail(`Queue "${name}" does not exist. To create it, run: wrangler queues create ${name}`);
    console.log(`Queue Name: ${name}\nQueue ID: ${queue.id}\nNumber of Producers: 0\nNumber of Consumers: 0`);
  },
  "queues create": () => {
    if (account.queues.some((q) => q.name === name)) fail(`A queue with name "${name}" already exists. [code: 11009]`);
    account.queues.push({ id: uuid(), name, jurisdiction });
    console.log(`\u{1F300} Creating queue '${name}'\n\u2705 Created queue '${name}'`);
  },
  "r2 bucket": () => {
    if (third === "list") {
      const listed = account.buckets.filter((b) => (b.jurisdiction ?? null) === jurisdiction);
      console.log(
        `Listing buckets...\n${listed.map((b) => `name:           ${b.name}\ncreation_date:  2026-12-01T00:00:00.000Z`).join("\n\n")}`,
      );
    } else if (third === "create") {
      if (account.buckets.some((b) => b.name === name))
        fail("The bucket you tried to create already exists, and you own it. [code: 10004]");
      account.buckets.push({ name, jurisdiction });
      console.log(`Creating bucket '${name}'...\n\u2705 Created bucket '${name}' with default storage class of Standard.`);
    }
  },
  "secret list": () => {
    if (!account.worker) fail(`Worker "${worker}" not found.\n\nIf this is a new Worker, run \`wrangler deploy\` first to create it.`);
    console.log(
      JSON.stringify(
        Object.keys(account.worker.secrets).map((n) => ({ name: n, type: "secret_text" })),
        null,
        "  ",
      ),
    );
  },
  "secret put": () => {
    if (!account.worker) {
      console.log(`\u{1F300} Creating new Worker "${worker}"...`);
      account.worker = { secrets: {} };
    }
    account.worker.secrets[name] = stdin;
    console.log(`\u{1F300} Creating the secret for the Worker "${worker}" \n\u2728 Success! Uploaded secret ${name}`);
  },
  "d1 migrations": () => {
    const binding = d1Bindings.find((b) => b.binding === args[3]);
    const db = account.databases.find((d) => d.uuid === binding?.id);
    if (!db) fail(`Couldn't find a D1 DB with the name or binding '${args[3]}' in your wrangler.toml file.`);
    const applied = account.migrations[db.uuid] ?? [];
    const todo = ["0000_init.sql", "0001_more.sql"].filter((m) => !applied.includes(m));
    if (todo.length === 0) return console.log("\u2705 No migrations to apply!");
    account.migrations[db.uuid] = [...applied, ...todo];
    console.log(`Migrations to be applied:\n┌──────┐\n│ name │\n├──────┤\n${todo.map((m) => `│ ${m} │`).join("\n├──────┤\n")}\n└──────┘`);
  },
  deploy: () => {
    for (const b of d1Bindings)
      if (!account.databases.some((d) => d.uuid === b.id)) fail(`binding ${b.binding}: database ${b.id} not found [code: 10181]`);
    for (const q of [...config.matchAll(/(?:queue|dead_letter_queue)\s*=\s*"([^"]+)"/g)].map((m) => m[1]))
      if (!account.queues.some((x) => x.name === q)) fail(`Queue "${q}" does not exist. To create it, run: wrangler queues create ${q}`);
    account.deploys++;
    console.log(
      `Uploaded ${worker} (1.02 sec)\nDeployed ${worker} triggers (0.31 sec)\n  schedule: */5 * * * *\nCurrent Version ID: ${uuid()}`,
    );
  },
};

const command = commands[`${group} ${verb}`] ?? commands[group];
if (!command) fail(`the stand-in does not know: wrangler ${args.join(" ")}`, 9);
command();
save();
