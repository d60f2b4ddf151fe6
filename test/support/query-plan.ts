import type { SQL } from "drizzle-orm";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import { shardedDb } from "./shards";

/** A drizzle query builder or raw SQL, as a query-plan test hands it over. */
export type PlannedQuery = SQL | { toSQL(): { sql: string; params: unknown[] } };

/** The plan SQLite picks for exactly the SQL (and parameters) a query issues, one line per step (on `shard`). */
export async function planLines(query: PlannedQuery, shard: D1Database | typeof shardedDb = shardedDb): Promise<string[]> {
  const { sql, params } = "toSQL" in query ? query.toSQL() : new SQLiteAsyncDialect().sqlToQuery(query);
  const plan = await shard
    .prepare(`EXPLAIN QUERY PLAN ${sql}`)
    .bind(...params)
    .all<{ detail: string }>();
  return plan.results.map((row) => row.detail);
}

/** The same plan as one text, a line per step. */
export const planText = async (query: PlannedQuery, shard?: D1Database | typeof shardedDb): Promise<string> =>
  (await planLines(query, shard)).join("\n");

/** One record sought by its key `(merchant_id, id)` (its autoindex: `transactions` is a rowid table since 0030), as `alias`. */
export const recordKeySeek = (alias = "transactions") =>
  new RegExp(`^SEARCH ${alias} USING (COVERING )?INDEX sqlite_autoindex_transactions_1 \\(merchant_id=\\? AND id=\\?\\)$`, "m");
