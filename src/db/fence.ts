import { and, type SQLWrapper, sql } from "drizzle-orm";
import { inList, sqlLiterals } from "./bulk";
import type { Database } from "./client";
import { type MoveMarkState, moveMarks } from "./schema";

/** A write not tried because its merchant's shard fences it (a move's switch): `isMerchantFenced` knows its message. */
export class MerchantFencedError extends Error {
  constructor() {
    super("merchant_fenced: the merchant is switching shards");
  }
}

/** A mark that fences its merchant's writes on this shard (a move's switch, or moved off it): the triggers' states. */
const FENCING = sql`${moveMarks.state} IN ('fenced', 'moved')`;

/**
 * The marks under which this shard's own scheduled work leaves the merchant alone: a move's copy arriving (`receiving`,
 * the source still serves it), its switch (`fenced`) or moved off it (`moved`). The one list every cron walk reads.
 */
export const NOT_SERVED_STATES: readonly MoveMarkState[] = ["receiving", "fenced", "moved"];
/** The marks under which the merchant is not placed on this shard (the directory names another): shard status counts. */
export const NOT_PLACED_STATES: readonly MoveMarkState[] = ["receiving", "moved"];

/** SQL: the merchant `merchantId` names (a column or a value) has a mark of `states` here (one seek of the marks' key). */
const markedHere = (merchantId: SQLWrapper, states: readonly MoveMarkState[]) =>
  sql`EXISTS (SELECT 1 FROM ${moveMarks} WHERE ${moveMarks.merchantId} = ${merchantId} AND ${moveMarks.state} IN (${sqlLiterals(states)}))`;

/**
 * SQL: this shard serves the merchant `merchantId` names (a column or a value): no mark of NOT_SERVED_STATES. Every
 * scheduled step and shard-wide walk that writes or calls out for a merchant takes only merchants served here, so a
 * move's copy on its target is not archived, alerted on, reconciled or walked twice while the source still serves it.
 */
export const servedHere = (merchantId: SQLWrapper) => sql`NOT ${markedHere(merchantId, NOT_SERVED_STATES)}`;

/** SQL: the merchant is placed on this shard (the directory names it): no mark of NOT_PLACED_STATES. */
export const placedHere = (merchantId: SQLWrapper) => sql`NOT ${markedHere(merchantId, NOT_PLACED_STATES)}`;

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
