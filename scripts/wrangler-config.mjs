// The few facts the scripts read from wrangler.toml, through one small parser: the D1 bindings (`[[d1_databases]]`, in
// file order) that `npm run db:migrate` and the local stack migrate, and the Cron Trigger expressions (`[triggers]`)
// that `npm start` fires. No TOML library is a dependency of this project, and these two keys are all the scripts need.
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
 * `{ d1Bindings, crons }` of a wrangler.toml text. With `env`, those of `[env.<env>]`: wrangler does not inherit
 * `d1_databases` or `triggers` into an environment, so an environment lists its own (none when it has none).
 */
export function parseWranglerToml(text, { env = null } = {}) {
  const prefix = env ? `env.${env}.` : "";
  const d1Bindings = [];
  const crons = [];
  let table = "";
  // A `crons = [` array may span lines: its strings are collected until the closing bracket.
  let inCrons = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = stripComment(raw).trim();
    if (inCrons) {
      crons.push(...strings(line));
      inCrons = !line.includes("]");
      continue;
    }
    const header = /^(\[\[?)\s*([^[\]]+?)\s*\]\]?$/.exec(line);
    if (header) {
      table = header[1] === "[[" ? `[[${header[2]}]]` : header[2];
      continue;
    }
    const pair = /^([A-Za-z0-9_-]+)\s*=\s*(.*)$/.exec(line);
    if (!pair) continue;
    const [, key, value] = pair;
    if (table === `[[${prefix}d1_databases]]` && key === "binding") d1Bindings.push(...strings(value).slice(0, 1));
    if (table === `${prefix}triggers` && key === "crons") {
      crons.push(...strings(value));
      inCrons = value.includes("[") && !value.includes("]");
    }
  }
  return { d1Bindings, crons };
}

/** wrangler.toml (or the file at `path`), parsed. */
export function readWranglerToml(path = WRANGLER_TOML, options = {}) {
  return parseWranglerToml(readFileSync(path, "utf8"), options);
}
