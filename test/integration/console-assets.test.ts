import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "../support/fixtures";

/** The assets binding of wrangler.toml (not in AppEnv: the worker never reads it). */
function assetsBinding(bindings: object): Fetcher {
  if (!("ASSETS" in bindings)) throw new Error('wrangler.toml\'s [assets] block has no binding = "ASSETS"');
  return bindings.ASSETS as Fetcher;
}

/** A request as Workers Static Assets answer it in front of the worker (the test runner's worker export skips them). */
const asset = (path: string) => assetsBinding(env).fetch(new Request(`https://edge.test${path}`));

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Every URL a page or stylesheet names in src/href/url(): scripts, styles, icons, fonts. */
function referencedUrls(text: string): string[] {
  const attributes = [...text.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1] ?? "");
  const cssUrls = [...text.matchAll(/url\(\s*["']?([^"')]+)["']?\s*\)/g)].map((m) => m[1] ?? "");
  return [...attributes, ...cssUrls];
}

/** A URL that leaves the page's origin: absolute with a scheme other than data:, or protocol-relative. */
const otherOrigin = (url: string) => (/^[a-z][a-z0-9+.-]*:/i.test(url) ? !url.startsWith("data:") : url.startsWith("//"));

describe.each(["/console", "/docs"])("%s", (page) => {
  it("is served as HTML with the Content-Security-Policy", async () => {
    const response = await asset(page);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
    expect(response.headers.get("content-security-policy")).toBe(CSP);
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("runs no inline script and loads every script and style from its own origin, with the same policy", async () => {
    const html = await (await asset(page)).text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\son[a-z]+=/i);
    const urls = referencedUrls(html);
    const assets = urls.filter((url) => url.startsWith("/assets/"));
    expect(assets.some((url) => url.endsWith(".js"))).toBe(true);
    expect(assets.some((url) => url.endsWith(".css"))).toBe(true);
    expect(urls.filter(otherOrigin)).toEqual([]);
    for (const path of assets) {
      const response = await asset(path);
      expect(response.status, path).toBe(200);
      expect(response.headers.get("content-security-policy"), path).toBe(CSP);
      expect(response.headers.get("cache-control"), path).toContain("immutable");
      if (path.endsWith(".css")) expect(referencedUrls(await response.text()).filter(otherOrigin), path).toEqual([]);
      else await response.body?.cancel();
    }
  });
});

describe("/docs", () => {
  it("is a reference page whose bundled script reads the worker's own OpenAPI document", async () => {
    const html = await (await asset("/docs")).text();
    const scripts = referencedUrls(html).filter((url) => url.startsWith("/assets/") && url.endsWith(".js"));
    const sources = await Promise.all(scripts.map(async (path) => (await asset(path)).text()));
    expect(sources.some((source) => source.includes('"/v1/openapi.json"'))).toBe(true);
  });
});

describe("the API next to the assets", () => {
  it("still reaches the worker: the OpenAPI document and health", async () => {
    const document = await call("/v1/openapi.json");
    expect(document.status).toBe(200);
    expect(document.headers.get("content-type")).toContain("application/json");
    expect((await call("/health")).status).toBe(200);
  });

  it("answers an unknown path under /v1 with the error envelope, not an asset", async () => {
    const response = await call("/v1/console");
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });
});
