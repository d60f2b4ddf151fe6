import { type SQL, sql } from "drizzle-orm";
import { nowIso, transactions } from "./schema";

/*
 * A transaction's status changes live in its record's row (`transactions.status_history`, 0030): a JSON array, oldest
 * first, of `{at, from, to, event_id, event_name, read_at}` (null members left out), appended by the record's own
 * upsert when it changes the status, so a change costs no D1 row of its own. The archive strips the oldest entries it
 * took (entries are only ever appended, so "the first k" is exact). Rows of `transaction_status_changes` written by
 * code before 0030 were merged into it by 0035 (in time order), and are no longer read.
 */

/** What the upsert carries for the entry its write may add (its `at` is the statement's `updated_at`, taken in SQL). */
export function statusEntry(entry: { to: string; eventId: string | null; eventName: string | null; readAt: string | null }): string {
  const fields = { to: entry.to, event_id: entry.eventId, event_name: entry.eventName, read_at: entry.readAt };
  return JSON.stringify(Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== null)));
}

/** The history of a record stored for the first time: its one entry, stamped when the statement runs. */
export const firstStatusHistory = sql`json_array(json_set(value ->> '$.status_history', '$.at', ${nowIso}))`;

/**
 * The status of a history's last entry; with none left (every entry archived, even of a record in flight that
 * reconciliation keeps refreshing), the record's own status as stored, so a write that keeps it adds no entry.
 */
const lastStatus = sql`coalesce(transactions.status_history ->> '$[#-1].to', transactions.status)`;

/**
 * The history after a compare-and-set upsert that replaced the record: the entry appended when the status differs from
 * the last recorded one (the rule the table followed: a write that keeps the status adds nothing), `from` being that
 * last status. `excluded.status_history` is `firstStatusHistory` of the incoming row.
 */
export const appendedStatusHistory = sql`CASE WHEN excluded.status IS NOT ${lastStatus}
  THEN json_insert(coalesce(transactions.status_history, '[]'), '$[#]',
    json_patch(excluded.status_history -> '$[0]', json_object('from', ${lastStatus})))
  ELSE transactions.status_history END`;

/**
 * The record `t` gained its last entry in the write that stamped its `updated_at`: the change this write made (what the
 * endpoint stream numbers, transactions/stream.ts).
 */
export const changedByThisWrite = sql`coalesce(t.status_history ->> '$[#-1].at' = t.updated_at
  AND t.status_history ->> '$[#-1].to' = t.status, 0)`;
/** The status before that change. */
export const statusBeforeThisWrite = sql`(t.status_history ->> '$[#-1].from')`;

/** An entry of the history `j` as a `transaction_status_changes` row (`StatusChangeRow`); its id is its position. */
const entry = <T>(name: string, column: string) => sql<T>`j.value ->> ${`$.${name}`}`.as(column);
export const statusHistoryColumns = {
  // Raw column names: drizzle refuses a table's column in a select whose FROM is SQL.
  id: sql<number>`j.key + 1`.mapWith(Number).as("id"),
  merchantId: sql<string>`transactions.merchant_id`.as("merchant_id"),
  transactionId: sql<string>`transactions.id`.as("transaction_id"),
  at: entry<string>("at", "at"),
  fromStatus: entry<string | null>("from", "from_status"),
  toStatus: entry<string>("to", "to_status"),
  eventId: entry<string | null>("event_id", "event_id"),
  eventName: entry<string | null>("event_name", "event_name"),
  readAt: entry<string | null>("read_at", "read_at"),
};

/** Each stored status change of each record: `FROM` this, `SELECT` `statusHistoryColumns`. */
export const statusHistoryFrom = sql`${transactions} CROSS JOIN json_each(${transactions.statusHistory}) AS j`;

/** The history without its first `count` entries (NULL when none is left). */
export const withoutFirstStatuses = (count: SQL) => sql`(SELECT nullif(json_group_array(json(h.value)), '[]')
  FROM json_each(${transactions.statusHistory}) AS h WHERE h.key >= ${count})`;
