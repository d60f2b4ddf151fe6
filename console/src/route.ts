import { useEffect, useState } from "preact/hooks";

export const PAGES = ["pipeline", "budget", "batches", "payments", "alerts", "shards", "endpoints"] as const;
export type Page = (typeof PAGES)[number];

/** Where the console is: `#/payments/tr_123?status=completed` → page, the id after it, and the query. */
export interface Route {
  page: Page;
  id: string | null;
  params: URLSearchParams;
}

/** Parses a location hash; anything unknown is the pipeline page. */
export function parseRoute(hash: string): Route {
  const [path = "", search = ""] = hash.replace(/^#\/?/, "").split("?", 2);
  const [page, id] = path.split("/");
  const known = PAGES.find((p) => p === page);
  return { page: known ?? "pipeline", id: known && id ? decodeURIComponent(id) : null, params: new URLSearchParams(search) };
}

/** The hash of a page (and id, and query). */
export function href(page: Page, id?: string | null, params?: Record<string, string | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params ?? {})) if (value) search.set(name, value);
  const query = search.toString();
  return `#/${page}${id ? `/${encodeURIComponent(id)}` : ""}${query ? `?${query}` : ""}`;
}

/** The current route, following `hashchange`. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const follow = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", follow);
    return () => removeEventListener("hashchange", follow);
  }, []);
  return route;
}
