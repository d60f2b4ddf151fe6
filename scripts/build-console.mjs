// `npm run build:console`: bundles the operations console (`console/`, Preact + uPlot) and the API reference page
// (swagger-ui-dist) from npm into `dist/assets/`, the Workers Static Assets directory of wrangler.toml. Every script and
// style is a hashed file under `/assets/`; the two pages load nothing from another origin and run no inline script.
import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SOURCE = join(ROOT, "console");
/** The directory wrangler.toml's `[assets]` serves. */
const ASSETS_DIR = join(ROOT, "dist", "assets");

/** Served with every page and file of the directory (Workers Static Assets read `_headers`; the worker's answers keep their own). */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

const HEADERS = `/*
  Content-Security-Policy: ${CONTENT_SECURITY_POLICY}
  X-Content-Type-Options: nosniff
  Referrer-Policy: no-referrer
/assets/*
  Cache-Control: public, max-age=31536000, immutable
`;

/** The pages: each an HTML template in console/ whose `%name.js%` / `%name.css%` placeholders name an entry's hashed output. */
const PAGES = [
  { template: "console.html", entry: "console", source: "src/main.tsx" },
  { template: "docs.html", entry: "docs", source: "docs/main.ts" },
];

const SWAGGER_LICENSE = "swagger-ui-bundle.js.LICENSE.txt";

/**
 * Builds both pages into `dist/assets/` and answers the files written with their sizes. The build goes to a folder beside
 * it that then replaces it whole, so a running `wrangler dev` or test run never sees a half-written directory.
 */
export async function buildConsole() {
  const out = `${ASSETS_DIR}.next`;
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const result = await build({
    entryPoints: Object.fromEntries(PAGES.map((page) => [page.entry, join(SOURCE, page.source)])),
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    jsx: "automatic",
    jsxImportSource: "preact",
    outdir: join(out, "assets"),
    entryNames: "[name]-[hash]",
    assetNames: "[name]-[hash]",
    legalComments: "linked",
    metafile: true,
    logLevel: "warning",
    define: { "process.env.NODE_ENV": '"production"' },
  });

  const outputs = new Map();
  for (const [file, output] of Object.entries(result.metafile.outputs)) {
    if (!output.entryPoint) continue;
    const page = PAGES.find((p) => join(SOURCE, p.source) === join(ROOT, output.entryPoint));
    if (!page) continue;
    outputs.set(`${page.entry}.js`, `/assets/${basename(file)}`);
    if (output.cssBundle) outputs.set(`${page.entry}.css`, `/assets/${basename(output.cssBundle)}`);
  }
  for (const page of PAGES) {
    const html = readFileSync(join(SOURCE, page.template), "utf8").replace(/%([a-z]+\.(?:js|css))%/g, (_, name) => {
      const path = outputs.get(name);
      if (!path) throw new Error(`${page.template} names ${name}, which the build did not produce`);
      return path;
    });
    writeFileSync(join(out, page.template), html);
  }
  writeFileSync(join(out, "_headers"), HEADERS);
  // The docs bundle's legal comment points to this file: it ships beside it.
  copyFileSync(join(ROOT, "node_modules", "swagger-ui-dist", SWAGGER_LICENSE), join(out, "assets", SWAGGER_LICENSE));
  const files = Object.keys(result.metafile.outputs)
    .map((file) => relative(out, join(ROOT, file)))
    .concat(
      PAGES.map((page) => page.template),
      join("assets", SWAGGER_LICENSE),
    )
    .map((file) => ({ file: relative(ROOT, join(ASSETS_DIR, file)), bytes: statSync(join(out, file)).size }));
  rmSync(ASSETS_DIR, { recursive: true, force: true });
  renameSync(out, ASSETS_DIR);
  return files;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = await buildConsole();
  const total = files.reduce((sum, f) => sum + f.bytes, 0);
  for (const { file, bytes } of files) console.log(`${(bytes / 1024).toFixed(1).padStart(9)} KiB  ${file}`);
  console.log(`${(total / 1024).toFixed(1).padStart(9)} KiB  total in ${relative(ROOT, ASSETS_DIR)}/`);
}
