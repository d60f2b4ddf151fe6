import { SandboxError } from "./errors.ts";

/** Smart Router list parameters (smart-router.md §5). */
export interface PageQuery {
  limit: number;
  order: "asc" | "desc";
  startAfter: string | null;
  endBefore: string | null;
}

export interface Page<T> {
  items: T[];
  hasMore: boolean;
}

const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 100;

function invalid(message: string): SandboxError {
  return new SandboxError(400, "request.pagination.invalid", message);
}

/** Reads `limit`, `order`, `start_after`, `end_before`; 400 `request.pagination.invalid` on anything Smart Router refuses. */
export function parsePageQuery(params: URLSearchParams): PageQuery {
  const rawLimit = params.get("limit");
  let limit = DEFAULT_LIMIT;
  if (rawLimit !== null && rawLimit !== "") {
    if (!/^[0-9]+$/.test(rawLimit))
      throw invalid(`limit must be a whole number between 0 and ${MAX_LIMIT}, got ${JSON.stringify(rawLimit)}`);
    const parsed = Number(rawLimit);
    if (parsed > MAX_LIMIT) throw invalid(`limit must be at most ${MAX_LIMIT}, got ${parsed}`);
    // 0 means "the default", as in Smart Router.
    limit = parsed === 0 ? DEFAULT_LIMIT : parsed;
  }
  const rawOrder = params.get("order");
  if (rawOrder !== null && rawOrder !== "" && rawOrder !== "asc" && rawOrder !== "desc") {
    throw invalid(`order must be asc or desc, got ${JSON.stringify(rawOrder)}`);
  }
  const order = rawOrder === "asc" ? "asc" : "desc";
  const startAfter = params.get("start_after") || null;
  const endBefore = params.get("end_before") || null;
  if (startAfter !== null && endBefore !== null) throw invalid("start_after and end_before cannot be used together");
  return { limit, order, startAfter, endBefore };
}

/**
 * Cuts one page out of `items` (stored oldest first) in the requested order.
 * Cursors are exclusive. `start_after` walks forward: `has_more` says whether items follow the page.
 * `end_before` walks back: the page is the `limit` items just before the cursor, still in the requested order, and
 * `has_more` says whether items precede the page. A cursor that names no item of this list is a 400.
 */
export function paginate<T extends { id: string }>(
  items: readonly T[],
  positionOf: (id: string) => number | undefined,
  query: PageQuery,
): Page<T> {
  const count = items.length;
  const at = (k: number): T => {
    const item = items[query.order === "asc" ? k : count - 1 - k];
    if (item === undefined) throw new RangeError(`page position ${k} outside 0..${count - 1}`);
    return item;
  };
  const ordered = (id: string, parameter: string): number => {
    const position = positionOf(id);
    if (position === undefined) throw invalid(`${parameter} ${JSON.stringify(id)} does not name an object of this list`);
    return query.order === "asc" ? position : count - 1 - position;
  };

  let from: number;
  let to: number;
  let hasMore: boolean;
  if (query.endBefore !== null) {
    to = ordered(query.endBefore, "end_before");
    from = Math.max(0, to - query.limit);
    hasMore = from > 0;
  } else {
    from = query.startAfter !== null ? ordered(query.startAfter, "start_after") + 1 : 0;
    to = Math.min(count, from + query.limit);
    hasMore = to < count;
  }
  const page: T[] = [];
  for (let k = from; k < to; k++) page.push(at(k));
  return { items: page, hasMore };
}
