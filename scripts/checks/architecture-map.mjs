#!/usr/bin/env node
// Checks that docs/architecture.md's map lists every top-level folder and file of src/ once, one line each, and in an
// order where each one imports only what is listed before it (the layers, bottom first). Exit 1 on any difference.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const src = join(root, "src");
const map = readFileSync(join(root, "docs/architecture.md"), "utf8");

/** The map's entries: lines "- `src/<name>` …" (a folder ends with "/"), in order. */
const listed = [...map.matchAll(/^- `src\/([^`]+)`/gm)].map((m) => m[1]);
const actual = readdirSync(src)
  .filter((name) => !name.endsWith(".d.ts"))
  .map((name) => (statSync(join(src, name)).isDirectory() ? `${name}/` : name));

const walk = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : /\.tsx?$/.test(name) ? [path] : [];
  });
const nodeOf = (file) => {
  const [first, ...rest] = relative(src, file).split("/");
  return rest.length > 0 ? `${first}/` : first;
};
const resolveImport = (from, spec) => {
  const base = resolve(dirname(from), spec);
  return [base, `${base}.ts`, `${base}.tsx`, join(base, "index.ts")].find((c) => existsSync(c) && statSync(c).isFile());
};

const problems = [];
for (const name of actual) if (!listed.includes(name)) problems.push(`src/${name} is not on the map`);
for (const name of listed) if (!actual.includes(name)) problems.push(`the map lists src/${name}, which does not exist`);
for (const name of new Set(listed)) if (listed.filter((n) => n === name).length > 1) problems.push(`src/${name} is listed twice`);

const position = new Map(listed.map((name, index) => [name, index]));
for (const file of walk(src)) {
  const text = readFileSync(file, "utf8");
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g)) {
    const target = resolveImport(file, m[1] ?? m[2]);
    if (!target?.startsWith(src)) continue;
    const [a, b] = [nodeOf(file), nodeOf(target)];
    if (a !== b && (position.get(b) ?? -1) > (position.get(a) ?? Number.POSITIVE_INFINITY)) {
      problems.push(`src/${a} imports src/${b}, listed above it (${relative(root, file)} → ${relative(root, target)})`);
    }
  }
}
if (problems.length > 0) {
  console.error(`docs/architecture.md's map and src/ disagree:\n  ${[...new Set(problems)].join("\n  ")}`);
  process.exit(1);
}
console.log(`architecture map: ${listed.length} entries, each importing only those above it`);
