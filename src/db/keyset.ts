import { type SQL, type SQLWrapper, sql } from "drizzle-orm";

/** The direction of a key-set walk: the ORDER BY direction of every column of its key. */
export type KeyOrder = "asc" | "desc";

/**
 * Rows strictly after `position` in a key-set walk over `key` (its ORDER BY columns, all in `order`): the row value
 * `(a, b) > (?, ?)`, `<` walking down, which SQLite bounds in the index instead of filtering the rows it reads.
 * `position` holds values or columns, one per key column; none (the first page) is no condition.
 */
export function afterRow(order: KeyOrder, key: readonly SQLWrapper[], position: readonly unknown[]): SQL;
export function afterRow(order: KeyOrder, key: readonly SQLWrapper[], position: readonly unknown[] | undefined): SQL | undefined;
export function afterRow(order: KeyOrder, key: readonly SQLWrapper[], position: readonly unknown[] | undefined): SQL | undefined {
  if (position === undefined) return undefined;
  const values = position.map((value) => sql`${value}`);
  return sql`(${sql.join([...key], sql`, `)}) ${sql.raw(order === "asc" ? ">" : "<")} (${sql.join(values, sql`, `)})`;
}
