import { createContext } from "preact";
import { useContext, useEffect, useRef, useState } from "preact/hooks";
import type { ApiClient, ApiFailure } from "./api";

/** The client of the signed-in session, provided by the shell. */
export const ApiContext = createContext<ApiClient | null>(null);

/** The signed-in session's API client. */
export function useApi(): ApiClient {
  const api = useContext(ApiContext);
  if (!api) throw new Error("useApi outside the signed-in console");
  return api;
}

/**
 * One documented resource as a panel shows it. `unavailable`: the endpoint answered 404 (this deployment does not have
 * it, or the thing does not exist); `ready` keeps the last good data when a refresh fails, with that failure.
 */
export type Resource<T> =
  | { state: "loading" }
  | { state: "ready"; data: T; failure: ApiFailure | null }
  | { state: "unavailable"; failure: ApiFailure }
  | { state: "failed"; failure: ApiFailure };

/**
 * Reads `path` (null: nothing to read), again every `refreshMs` when given. The polling loop ends when the panel unmounts
 * or the path changes, and after a 404 or 401 (nothing to poll for); it never retries faster than `refreshMs`.
 */
export function useResource<T>(path: string | null, refreshMs?: number): [Resource<T>, () => void] {
  const api = useApi();
  const [resource, setResource] = useState<Resource<T>>({ state: "loading" });
  const [reloads, setReloads] = useState(0);
  const shownPath = useRef<string | null>(null);

  useEffect(() => {
    if (path === null) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // A reload keeps what is shown until the answer comes; another path starts from "loading".
    if (shownPath.current !== path) setResource({ state: "loading" });
    shownPath.current = path;
    const load = async () => {
      const result = await api.get<T>(path);
      if (stopped) return;
      if (result.ok) {
        setResource({ state: "ready", data: result.data, failure: null });
      } else if (result.failure.status === 404) {
        setResource({ state: "unavailable", failure: result.failure });
        return;
      } else if (result.failure.status === 401) {
        return;
      } else {
        const failure = result.failure;
        setResource((previous) => (previous.state === "ready" ? { ...previous, failure } : { state: "failed", failure }));
      }
      if (refreshMs !== undefined) timer = setTimeout(load, refreshMs);
    };
    load();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
    // `reloads` is a dependency only so that reload() runs the effect again.
  }, [api, path, refreshMs, reloads]);

  return [resource, () => setReloads((n) => n + 1)];
}

/** A cursor-paged list as the panels show it: the first page (refreshed), older pages on demand, each item once. */
export interface PagedList<T> {
  first: Resource<unknown>;
  items: T[];
  /** Loads the next older page; null on the last page. */
  loadMore: (() => Promise<void>) | null;
  moreFailure: ApiFailure | null;
  reload: () => void;
}

/**
 * Reads the list at `path` (its first page again every `refreshMs`) and, on demand, the pages after it with the same
 * query plus `cursor`. Mount it with `key={path}` so another query starts over.
 */
export function usePagedList<P extends { next_cursor: string | null }, T extends { id: string }>(
  path: string,
  refreshMs: number,
  itemsOf: (page: P) => T[],
): PagedList<T> {
  const api = useApi();
  const [first, reload] = useResource<P>(path, refreshMs);
  const [older, setOlder] = useState<{ items: T[]; nextCursor: string | null } | null>(null);
  const [moreFailure, setMoreFailure] = useState<ApiFailure | null>(null);
  const firstPage = first.state === "ready" ? first.data : null;
  const nextCursor = older ? older.nextCursor : (firstPage?.next_cursor ?? null);

  const loadMore = async () => {
    if (!nextCursor) return;
    const next = new URL(path, location.origin);
    next.searchParams.set("cursor", nextCursor);
    const result = await api.get<P>(`${next.pathname}${next.search}`);
    if (!result.ok) return setMoreFailure(result.failure);
    setMoreFailure(null);
    setOlder((previous) => ({ items: [...(previous?.items ?? []), ...itemsOf(result.data)], nextCursor: result.data.next_cursor }));
  };

  // The first page refreshes on its own: an item that moved up into it from an older page is shown once.
  const seen = new Set<string>();
  const items = [...(firstPage ? itemsOf(firstPage) : []), ...(older?.items ?? [])].filter((item) => {
    if (seen.has(item.id)) return false;
    seen.add(item.id);
    return true;
  });
  return { first, items, loadMore: nextCursor ? loadMore : null, moreFailure, reload };
}
