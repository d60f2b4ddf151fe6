// The few facts the scripts read from wrangler.toml, through one small parser: the D1 bindings (`[[d1_databases]]`, in
// file order) that `npm run db:migrate` and the local stack migrate, the Cron Trigger expressions (`[triggers]`) that
// `npm start` fires, and the resources `npm run setup` provisions (D1 names and ids, queues, buckets). No TOML library is
// a dependency of this project, and string values are all the scripts need.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const WRANGLER_TOML = join(fileURLToPath(new URL("..", import.meta.url)), "wrangler.toml");

/** The quoted strings of a TOML value: basic ("…", with escapes) and literal ('…'). */
function strings(value) {
  return [...value.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'/g)].map((m) => (m[1] === undefined ? m[2] : JSON.parse(`"${m[1]}"`)));
}

/** The line without its comment: a `#` outside quotes starts one (a cron may hold `#`, e.g. "0 9 * * 1#2"). */
function stripComment(line) {
  let quote = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "#") return line.slice(0, i);
  }
  return line;
}

/**
 * The tables of a wrangler.toml text, in file order: `{ table, line, fields }`, `table` as written (`name` or
 * `[[name]]`; "" for the top level), `line` the header's index, `fields[key] = { values, line }` with the quoted strings
 * of the value (an array spanning lines included) and the index of the key's line. Only string values are read: they are
 * all the scripts need.
 */
export function parseWranglerTables(text) {
  const tables = [{ table: "", line: -1, fields: {} }];
  // An array value (`crons = [`) may span lines: its strings are collected until the closing bracket.
  let open = null;
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = stripComment(raw).trim();
    if (open) {
      open.values.push(...strings(line));
      if (line.includes("]")) open = null;
      continue;
    }
    const header = /^(\[\[?)\s*([^[\]]+?)\s*\]\]?$/.exec(line);
    if (header) {
      tables.push({ table: header[1] === "[[" ? `[[${header[2]}]]` : header[2], line: index, fields: {} });
      continue;
    }
    const pair = /^([A-Za-z0-9_-]+)\s*=\s*(.*)$/.exec(line);
    if (!pair) continue;
    const field = { values: strings(pair[2]), line: index };
    tables[tables.length - 1].fields[pair[1]] = field;
    if (pair[2].startsWith("[") && !pair[2].includes("]")) open = field;
  }
  return tables;
}

/** The first string of a table's field, or null. */
export const fieldValue = (table, key) => table.fields[key]?.values[0] ?? null;

/**
 * `{ d1Bindings, crons }` of a wrangler.toml text. With `env`, those of `[env.<env>]`: wrangler does not inherit
 * `d1_databases` or `triggers` into an environment, so an environment lists its own (none when it has none).
 */
export function parseWranglerToml(text, { env = null } = {}) {
  const prefix = env ? `env.${env}.` : "";
  const tables = parseWranglerTables(text);
  const d1Bindings = tables
    .filter((t) => t.table === `[[${prefix}d1_databases]]` && fieldValue(t, "binding") !== null)
    .map((t) => fieldValue(t, "binding"));
  const crons = tables.filter((t) => t.table === `${prefix}triggers`).flatMap((t) => t.fields.crons?.values ?? []);
  return { d1Bindings, crons };
}

/** wrangler.toml (or the file at `path`), parsed. */
export function readWranglerToml(path = WRANGLER_TOML, options = {}) {
  return parseWranglerToml(readFileSync(path, "utf8"), options);
}
