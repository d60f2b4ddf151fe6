import { type SQL, sql } from "drizzle-orm";

/**
 * A merchant-scoped table as a move copies it (the tables with triggers in migrations/0022_merchant_moves.sql, except
 * `operations`, `transaction_status_changes` and `archived_histories`: 0035 merged them into the records, and this code
 * never names them, so the next release's migration can drop them while it still runs).
 * `key`: its primary key, the copy's keyset order. `ownId`: an integer id the shard assigns (a copied row takes a new
 * one, mapped in `move_row_map`). `remap`: columns holding another table's own id.
 */
export interface MovedTable {
  name: string;
  key: readonly string[];
  ownId?: boolean;
  remap?: Record<string, string>;
  /** The merchant's rows, `x` being the table's alias; default `x.merchant_id = ?`. */
  owned?: (merchantId: string) => SQL;
  /**
   * The same rows as the copy's keyset page selects them, when it must walk the key rather than an index (`owned`): such a
   * page reads a bounded number of keys, whoever's they are (src/moves/rows.ts `readPage`), and may copy none.
   */
  walk?: (merchantId: string) => SQL;
  /** Rows per copy page and per catch-up write (MOVE_PAGE when unset): lower for wide rows, each page being one JSON value. */
  page?: number;
}

const byMerchantId = (merchantId: string) => sql`x.merchant_id = ${merchantId}`;

/** Copy order: a parent before the rows that name it (merchants first); cleaning runs it backwards. */
export const MOVED_TABLES: readonly MovedTable[] = [
  { name: "merchants", key: ["id"], owned: (merchantId) => sql`x.id = ${merchantId}` },
  { name: "api_keys", key: ["id"] },
  { name: "event_log_cursors", key: ["merchant_id"] },
  { name: "retention_cursors", key: ["merchant_id"] },
  { name: "endpoints", key: ["id"] },
  // A record row is to carry its operation history (JSON, up to a few KB): 500 in one JSON parameter could pass D1's limits.
  { name: "transactions", key: ["merchant_id", "id"], page: 100 },
  // Keyed (id, merchant_id) since 0029; `+` keeps the merchant's term off `events_transaction` so the page walks the key
  // in order (each page resumes where the last stopped) instead of sorting the merchant's whole inbox for every page;
  // walked, each page reads a bounded run of keys, so a merchant with few of a shard's events never holds it for long.
  { name: "events", key: ["id", "merchant_id"], walk: (merchantId) => sql`+x.merchant_id = ${merchantId}` },
  { name: "webhook_deliveries", key: ["merchant_id", "event_id", "delivery_id"] },
  // The pipeline's counts of first deliveries per minute (0032): a day of them, moved so the page reads the same after.
  { name: "pipeline_minutes", key: ["merchant_id", "minute"] },
  { name: "transaction_references", key: ["merchant_id", "reference", "transaction_id"] },
  { name: "fulfillments", key: ["merchant_id", "transaction_id"] },
  { name: "transaction_streams", key: ["merchant_id", "transaction_id"] },
  { name: "transaction_changes", key: ["merchant_id", "transaction_id", "sequence"] },
  { name: "endpoint_messages", key: ["seq"], ownId: true },
  { name: "endpoint_replays", key: ["id"] },
  { name: "dead_letters", key: ["id"] },
  { name: "batches", key: ["id"] },
  {
    name: "batch_units",
    key: ["unit_id"],
    owned: (merchantId) => sql`x.batch_id IN (SELECT b.id FROM batches AS b WHERE b.merchant_id = ${merchantId})`,
  },
  { name: "export_leases", key: ["id"] },
  { name: "alerts", key: ["id"] },
  // The refund scan's watermark of the merchant (0033): without it the target would read the merchant's changes again.
  { name: "alert_scans", key: ["merchant_id", "name"] },
  { name: "parked_deliveries", key: ["merchant_id", "delivery_id"] },
  { name: "parked_wakeups", key: ["merchant_id"] },
  { name: "fetch_backs", key: ["id"], ownId: true },
  { name: "fulfillment_attempts", key: ["id"], ownId: true },
  { name: "archive_objects", key: ["id"], ownId: true },
  {
    name: "archive_pages",
    key: ["id"],
    ownId: true,
    owned: (merchantId) => sql`x.kind = 'dead_letters' AND x.scope = ${merchantId}`,
  },
];

export const ownedRows = (table: MovedTable, merchantId: string): SQL => (table.owned ?? byMerchantId)(merchantId);

/** The merchant's rows as the copy's keyset page walks them (`walk`, else `ownedRows`). */
export const walkedRows = (table: MovedTable, merchantId: string): SQL => (table.walk ?? table.owned ?? byMerchantId)(merchantId);

/** The primary key's column of an own-id table (its rowid). */
export const ownIdColumn = (table: MovedTable): string => table.key[0] ?? "rowid";

/** A table by its name, as the change log names it. */
export function movedTable(name: string): MovedTable | undefined {
  return MOVED_TABLES.find((table) => table.name === name);
}

/** A column list as SQL, our own names only (never input). */
export const columnList = (columns: readonly string[], prefix = ""): SQL =>
  sql.raw(columns.map((column) => `${prefix}"${column}"`).join(", "));
