import { and, eq, notInArray, type SQL, sql } from "drizzle-orm";
import { inList, insertJsonChunks, lookUpByMerchant, type MerchantKey } from "../db/bulk";
import type { Database } from "../db/client";
import { type EventOutcome, events, transactions } from "../db/schema";
import { countFirstDeliveries } from "./pipeline-minutes";
import { type FetchBackRecord, FOLDED_COLUMNS, foldedColumns } from "./timeline-record";

/**
 * Which of these events already have a final outcome, so a duplicate delivery costs no API call. `rejectedIsOpen`: an
 * event Smart Router did not know (404) counts as open, for the event log, which proves it real when it lists it.
 */
export async function settledEvents(db: Database, wanted: readonly MerchantKey[], { rejectedIsOpen = false } = {}) {
  const open: EventOutcome[] = rejectedIsOpen ? ["pending", "rejected"] : ["pending"];
  const found = await lookUpByMerchant(wanted, (merchantId, ids) =>
    db
      .select({ id: events.id })
      .from(events)
      .where(and(eq(events.merchantId, merchantId), inList(events.id, ids), notInArray(events.outcome, open))),
  );
  return { has: (merchantId: string, eventId: string) => found.get({ merchantId, id: eventId }) !== undefined };
}

export interface EventRecord {
  merchantId: string;
  eventId: string;
  name: string | null;
  transactionId: string | null;
  firedAt: string | null;
  outcome: EventOutcome;
  detail: string | null;
  deliveries: number;
  receivedAt: string;
  now: string;
  /** The delivery that brought the event first, when this write may be the one that creates its row (the timeline fold). */
  firstDeliveryId?: string | null;
  /** The fetch-back that settled the event, folded into its row (timeline-record.ts `recordUnfoldedFetchBacks` keeps the rest). */
  fetchBack?: FetchBackRecord | null;
}

/**
 * Records events in the inbox, all in one statement (per 500 rows), each after the one that counts its first deliveries
 * for the pipeline (pipeline-minutes.ts). The first final outcome sticks; later deliveries only add to the delivery
 * count, so replays and duplicates can never rewrite what happened.
 */
export function recordEvents(records: readonly EventRecord[]): SQL[] {
  const rows = records.map((record) => ({
    merchant_id: record.merchantId,
    id: record.eventId,
    name: record.name,
    transaction_id: record.transactionId,
    fired_at: record.firedAt,
    outcome: record.outcome,
    deliveries: record.deliveries,
    first_received_at: record.receivedAt,
    processed_at: record.outcome === "pending" ? null : record.now,
    detail: record.detail,
    ...foldedColumns(record.firstDeliveryId, record.fetchBack),
  }));
  return insertJsonChunks(events, rows, settleOnConflict(OPEN_TO_DELIVERIES)).flatMap(({ chunk, statement }) => [
    countFirstDeliveries({ rows: chunk, open: OPEN_TO_DELIVERIES }),
    statement,
  ]);
}

/** The fold's fetch-back columns on a conflict: the settling fetch-back goes in only while the row is open and holds none. */
const foldOnConflict = (condition: string) =>
  FOLDED_COLUMNS.filter((column) => column !== "first_delivery_id")
    .map(
      (column) => `${column} = CASE WHEN ${condition} AND events.fetch_back_at IS NULL THEN excluded.${column} ELSE events.${column} END,`,
    )
    .join("\n      ");

/** Outcomes a delivery's write may replace, and those a verified event's may (its ON CONFLICT and its pipeline count alike). */
const OPEN_TO_DELIVERIES: readonly EventOutcome[] = ["pending"];
const OPEN_TO_VERIFIED: readonly EventOutcome[] = ["pending", "rejected"];

/**
 * A later delivery only adds to the count; the first final outcome sticks (see `recordEvents`); a row it would leave as
 * it is (no delivery, a final outcome, nothing missing filled in) is not rewritten, so a re-applied event writes nothing. Only a verified event
 * may replace `rejected`: an event Smart Router did not know at first (read-after-write lag) that its event log lists
 * later is real after all. The row's first delivery never changes (a later one is a duplicate, recorded on its own).
 */
function settleOnConflict(open: readonly EventOutcome[]) {
  const condition = `events.outcome IN (${[...open].map((outcome) => `'${outcome}'`).join(", ")})`;
  const keep = (column: string) => sql.raw(`CASE WHEN ${condition} THEN excluded.${column} ELSE events.${column} END`);
  return sql`ON CONFLICT (merchant_id, id) DO UPDATE SET
      ${sql.raw(foldOnConflict(condition))}
      deliveries = events.deliveries + excluded.deliveries,
      name = coalesce(events.name, excluded.name),
      transaction_id = coalesce(events.transaction_id, excluded.transaction_id),
      fired_at = coalesce(events.fired_at, excluded.fired_at),
      processed_at = ${keep("processed_at")},
      detail = ${keep("detail")},
      outcome = ${keep("outcome")}
    WHERE excluded.deliveries > 0 OR ${sql.raw(condition)}
      OR (events.name IS NULL AND excluded.name IS NOT NULL)
      OR (events.transaction_id IS NULL AND excluded.transaction_id IS NOT NULL)
      OR (events.fired_at IS NULL AND excluded.fired_at IS NOT NULL)`;
}

/** A verified event whose snapshot went to the transactions upsert of the same D1 batch. */
export interface VerifiedEventRecord extends Omit<EventRecord, "outcome" | "detail" | "transactionId"> {
  transactionId: string;
  /** The snapshot version the upsert tried to write. */
  version: string;
  /** Why it would be stale, as far as the consumer could tell before the write. */
  staleDetail: string;
}

/**
 * Records verified events with the outcome the compare-and-set actually had: `applied` when, after the upsert that
 * runs just before this statement in the same D1 batch, the stored record is this event's snapshot; else `stale`. So a
 * concurrent consumer that wrote a newer snapshot first turns this one stale, whatever was read before. Returns the
 * recorded outcome of every row; the statement before it counts the first deliveries (pipeline-minutes.ts) and returns none.
 */
export function recordVerifiedEvents(records: readonly VerifiedEventRecord[]): SQL[] {
  if (records.length === 0) return [];
  const rows = JSON.stringify(
    records.map((record) => ({
      merchant_id: record.merchantId,
      id: record.eventId,
      name: record.name,
      transaction_id: record.transactionId,
      fired_at: record.firedAt,
      deliveries: record.deliveries,
      first_received_at: record.receivedAt,
      processed_at: record.now,
      version: record.version,
      stale_detail: record.staleDetail,
      ...foldedColumns(record.firstDeliveryId, record.fetchBack),
    })),
  );
  const folded = sql.raw(FOLDED_COLUMNS.join(", "));
  const foldedValues = sql.raw(FOLDED_COLUMNS.map((column) => `j.value ->> '$.${column}'`).join(", "));
  const applied = sql.raw("t.id IS NOT NULL");
  const stored = sql`LEFT JOIN ${transactions} AS t ON t.merchant_id = j.value ->> '$.merchant_id' AND t.id = j.value ->> '$.transaction_id'
        AND t.snapshot_version = j.value ->> '$.version' AND t.last_event_id = j.value ->> '$.id'`;
  const outcome = sql`CASE WHEN ${applied} THEN 'applied' ELSE 'stale' END`;
  // Raw json_each, not insertJsonRows: the outcome and detail come from a join of each row to the stored transaction.
  return [
    countFirstDeliveries({ rows, open: OPEN_TO_VERIFIED, outcome, join: stored }),
    sql`INSERT INTO ${events} (merchant_id, id, name, transaction_id, fired_at, outcome, deliveries, first_received_at, processed_at, detail, ${folded})
      SELECT j.value ->> '$.merchant_id', j.value ->> '$.id', j.value ->> '$.name', j.value ->> '$.transaction_id',
        j.value ->> '$.fired_at', ${outcome}, j.value ->> '$.deliveries',
        j.value ->> '$.first_received_at', j.value ->> '$.processed_at',
        CASE WHEN ${applied} THEN NULL ELSE j.value ->> '$.stale_detail' END, ${foldedValues}
      FROM json_each(${rows}) AS j
      ${stored}
      WHERE true ${settleOnConflict(OPEN_TO_VERIFIED)}
      RETURNING outcome`,
  ];
}
