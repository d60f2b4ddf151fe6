import { and, type SQLWrapper, sql } from "drizzle-orm";
import { inList } from "./bulk";
import type { Database } from "./client";
import { moveMarks } from "./schema";

/** A write not tried because its merchant's shard fences it (a move's switch): `isMerchantFenced` knows its message. */
export class MerchantFencedError extends Error {
  constructor() {
    super("merchant_fenced: the merchant is switching shards");
  }
}

/** A mark that fences its merchant's writes on this shard (a move's switch, or moved off it): the triggers' states. */
const FENCING = sql`${moveMarks.state} IN ('fenced', 'moved')`;

/** SQL: this shard fences the merchant `merchantId` names (a column or a value), for a query that must leave it alone. */
export const fencedHere = (merchantId: SQLWrapper) =>
  sql`EXISTS (SELECT 1 FROM ${moveMarks} WHERE ${moveMarks.merchantId} = ${merchantId} AND ${FENCING})`;

/**
 * Which of these merchants this shard fences (a move's switch, or moved off it, migration 0022): a write of theirs here
 * would abort, and with it every other write of the same D1 batch.
 */
export async function fencedMerchants(db: Database, merchantIds: readonly string[]): Promise<Set<string>> {
  if (merchantIds.length === 0) return new Set();
  const rows = await db
    .select({ merchantId: moveMarks.merchantId })
    .from(moveMarks)
    .where(and(inList(moveMarks.merchantId, merchantIds), FENCING));
  return new Set(rows.map((row) => row.merchantId));
}
