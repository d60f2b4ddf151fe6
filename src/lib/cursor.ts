import type { z } from "zod";
import { ApiError } from "../errors";
import { base64UrlToBytes, bytesToBase64Url, decodeUtf8Strict, utf8Bytes } from "./encoding";

const invalidCursor = () => new ApiError("invalid_cursor", "cursor is malformed; pass the next_cursor of a previous page unchanged");

/** An opaque page cursor: base64url of the JSON of where the previous page stopped. */
export function encodePageCursor(position: unknown): string {
  return bytesToBase64Url(utf8Bytes(JSON.stringify(position)));
}

/** Decodes a cursor into `schema`'s shape; anything this API did not issue is an `invalid_cursor` 400. */
export function decodePageCursor<S extends z.ZodType>(cursor: string, schema: S): z.infer<S> {
  try {
    const parsed = schema.safeParse(JSON.parse(decodeUtf8Strict(base64UrlToBytes(cursor))));
    if (parsed.success) return parsed.data;
  } catch {
    // Falls through to the same answer as a cursor of the wrong shape.
  }
  throw invalidCursor();
}

/** One keyset page from `limit + 1` rows read: the first `limit`, and the cursor after the last of them while more follow. */
export function keysetPage<Row>(rows: Row[], limit: number, position: (row: Row) => unknown): { page: Row[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { page, nextCursor: rows.length > limit && last !== undefined ? encodePageCursor(position(last)) : null };
}
