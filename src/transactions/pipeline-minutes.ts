import { type SQL, sql } from "drizzle-orm";
import { sqlLiterals } from "../db/bulk";
import { EVENT_OUTCOMES, type EventOutcome, events, pipelineMinutes } from "../db/schema";

/** What one inbox write binds and decides, as `countFirstDeliveries` replays it. */
export interface InboxWriteShape {
  /** The JSON text of rows the inbox write binds (one `json_each` array). */
  rows: string;
  /** Outcomes the write's ON CONFLICT may replace (inbox.ts `settleOnConflict`); any other one sticks. */
  open: readonly EventOutcome[];
  /** The outcome a row brings, over `j` (the json_each row) and what `join` adds; default its `outcome` key. */
  outcome?: SQL;
  /** Joins the write makes to decide the outcome (the verified write's stored transaction). */
  join?: SQL;
}

/** Per outcome column: how many rows the write moved into it less how many it moved out (`now_outcome`, `was`). */
const deltas = sql.raw(EVENT_OUTCOMES.map((outcome) => `sum(now_outcome IS '${outcome}') - sum(was IS '${outcome}')`).join(", "));
const added = sql.raw(EVENT_OUTCOMES.map((outcome) => `${outcome} = ${outcome} + excluded.${outcome}`).join(", "));
const columns = sql.raw(EVENT_OUTCOMES.join(", "));

/**
 * The statement that keeps pipeline_minutes in step with an inbox write, to run JUST BEFORE it in the same D1 batch (one
 * transaction): from the inbox as it is and the same JSON rows, it works out what the write will do to each event, as
 * its ON CONFLICT does (a new row takes the first row's outcome; an open outcome is replaced by the first row that brings
 * one that is not open; any other sticks; the first delivery and first receipt never change), and adds, per merchant and
 * minute of first receipt, +1 to the outcome a row ends in and -1 to the one it had (none for a new row), with the lag of
 * each that becomes applied. Rows without a first delivery (the event log's) are not counted. So only what the write
 * changes is counted: a replayed batch, a duplicate or a settled event's later delivery adds nothing, and a crash loses
 * or doubles nothing. One row written per (merchant, minute) touched, none when nothing changed.
 */
export function countFirstDeliveries({ rows, open, outcome = sql.raw("j.value ->> '$.outcome'"), join = sql`` }: InboxWriteShape): SQL {
  const isOpen = sqlLiterals(open);
  // Per event: its first row in the statement (which a new row takes), and the first that brings an outcome not open.
  return sql`WITH input AS (
      SELECT j.key AS n, j.value ->> '$.merchant_id' AS merchant_id, j.value ->> '$.id' AS id, ${outcome} AS outcome,
        j.value ->> '$.first_received_at' AS received_at, j.value ->> '$.processed_at' AS processed_at,
        j.value ->> '$.first_delivery_id' AS first_delivery_id
      FROM json_each(${rows}) AS j ${join}
    ),
    keyed AS (
      SELECT merchant_id, id, row_number() OVER arrival AS nth, first_value(received_at) OVER arrival AS received_at,
        first_value(first_delivery_id) OVER arrival AS first_delivery_id, first_value(outcome) OVER arrival AS first_outcome,
        first_value(outcome) OVER settling AS settling_outcome, first_value(processed_at) OVER settling AS processed_at
      FROM input
      WINDOW arrival AS (PARTITION BY merchant_id, id ORDER BY n),
        settling AS (PARTITION BY merchant_id, id ORDER BY outcome IN (${isOpen}), n)
    ),
    changed AS (
      SELECT k.merchant_id, coalesce(e.first_received_at, k.received_at) AS received_at, e.outcome AS was,
        CASE WHEN e.outcome NOT IN (${isOpen}) THEN e.outcome
          WHEN k.settling_outcome NOT IN (${isOpen}) THEN k.settling_outcome ELSE k.first_outcome END AS now_outcome,
        k.processed_at
      FROM keyed AS k LEFT JOIN ${events} AS e ON e.id = k.id AND e.merchant_id = k.merchant_id
      WHERE k.nth = 1 AND (CASE WHEN e.id IS NULL THEN k.first_delivery_id ELSE e.first_delivery_id END) IS NOT NULL
    )
    INSERT INTO ${pipelineMinutes} (merchant_id, minute, ${columns}, lags)
    SELECT merchant_id, substr(received_at, 1, 16), ${deltas},
      json_group_array(CAST(round((julianday(processed_at) - julianday(received_at)) * 86400000) AS INTEGER))
        FILTER (WHERE now_outcome = 'applied')
    FROM changed WHERE was IS NOT now_outcome GROUP BY merchant_id, substr(received_at, 1, 16)
    ON CONFLICT (merchant_id, minute) DO UPDATE SET ${added},
      lags = CASE WHEN excluded.lags = '[]' THEN lags WHEN lags = '[]' THEN excluded.lags
        ELSE substr(lags, 1, length(lags) - 1) || ',' || substr(excluded.lags, 2) END`;
}
