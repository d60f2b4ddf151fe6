import { z } from "zod";
import type { TransactionRow } from "../db/rows";
import { ApiError } from "../errors";
import { decodePageCursor, encodePageCursor } from "../lib/cursor";
import { TRANSACTION_STATUSES, type TransactionStatus } from "../smart-router/status";
import { MAX_REFERENCE_LENGTH } from "./references";

/** The filters of a transaction list; a cursor carries them so every page answers the same question. */
export interface ListFilters {
  status?: TransactionStatus;
  /** Normalised to the stored timestamp format (ISO 8601 UTC with milliseconds). */
  updatedAfter?: string;
  paymentType?: string;
  /** The merchant's own reference (references.ts), matched exactly. */
  reference?: string;
}

/** Where the previous page stopped: the last row's keyset position. */
export type PagePosition = Pick<TransactionRow, "updatedAt" | "id">;

const cursorSchema = z.strictObject({
  v: z.literal(1),
  u: z.string().min(1).max(64),
  i: z.string().min(1).max(128),
  s: z.enum(TRANSACTION_STATUSES).optional(),
  a: z.string().max(64).optional(),
  p: z.string().max(64).optional(),
  r: z
    .string()
    .min(1)
    .max(MAX_REFERENCE_LENGTH * 2)
    .optional(),
});

/** What a cursor carries: `{"v":1,"u":updated_at,"i":id,"s":status?,"a":updated_after?,"p":payment_type?,"r":reference?}`. */
export function cursorPayload(position: PagePosition, filters: ListFilters): z.infer<typeof cursorSchema> {
  return {
    v: 1,
    u: position.updatedAt,
    i: position.id,
    s: filters.status,
    a: filters.updatedAfter,
    p: filters.paymentType,
    r: filters.reference,
  };
}

/** An opaque cursor: base64url of `cursorPayload`. */
export function encodeCursor(position: PagePosition, filters: ListFilters): string {
  return encodePageCursor(cursorPayload(position, filters));
}

/** Decodes a cursor; anything this API did not issue is an `invalid_cursor` 400. */
export function decodeCursor(cursor: string): { position: PagePosition; filters: ListFilters } {
  const { u, i, s, a, p, r } = decodePageCursor(cursor, cursorSchema);
  return { position: { updatedAt: u, id: i }, filters: { status: s, updatedAfter: a, paymentType: p, reference: r } };
}

/**
 * The filters of a follow-up page: the cursor's. A filter repeated in the query must equal the cursor's; one that differs
 * would silently mix two lists, so it is refused.
 */
export function continueFilters(fromCursor: ListFilters, fromQuery: ListFilters): ListFilters {
  const conflicts: string[] = [];
  if (fromQuery.status !== undefined && fromQuery.status !== fromCursor.status) conflicts.push("status");
  if (fromQuery.updatedAfter !== undefined && fromQuery.updatedAfter !== fromCursor.updatedAfter) conflicts.push("updated_after");
  if (fromQuery.paymentType !== undefined && fromQuery.paymentType !== fromCursor.paymentType) conflicts.push("payment_type");
  if (fromQuery.reference !== undefined && fromQuery.reference !== fromCursor.reference) conflicts.push("reference");
  if (conflicts.length > 0) {
    throw new ApiError(
      "invalid_cursor",
      `cursor belongs to a list with a different ${conflicts.join(", ")}; repeat the first request's filters or leave them out`,
    );
  }
  return fromCursor;
}
