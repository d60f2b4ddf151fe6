import { getTableColumns, type SQL, sql } from "drizzle-orm";
import { safeErrorMessage } from "../db/errors";
import type { FulfillmentRow } from "../db/rows";
import {
  endpointMessages,
  endpoints,
  fulfillments,
  merchants,
  nowIso,
  transactionChanges,
  transactionStreams,
  transactions,
} from "../db/schema";
import { changedByThisWrite, statusBeforeThisWrite } from "../db/status-history";
import { log } from "../lib/log";
import { sendAll } from "../queue/send";
import { PRESENTED_COLUMNS, type PresentedRow } from "./present";

/**
 * One transaction an apply touched, as its stream sees it: the version the upsert was to write (null when the apply
 * wrote no record, only saw a capture), and the first-capture witness, if a snapshot of it was captured.
 */
export interface StreamEntry {
  merchantId: string;
  transactionId: string;
  version: string | null;
  capture: { byEvent: boolean; at: string } | null;
}

/** A lane of an endpoint that gained a message: its transaction's messages to that endpoint go out in order. */
export interface EndpointLane {
  merchant_id: string;
  endpoint_id: string;
  transaction_id: string;
}

const COLUMNS = getTableColumns(transactions);

/** `json_object(…)` of the presented columns of `t`, its fulfilment `f` and whether merchant `m` has a fulfillment_url. */
const RECORD_JSON = sql.raw(
  `json_object(${PRESENTED_COLUMNS.map((key) => `'${COLUMNS[key].name}', t."${COLUMNS[key].name}"`).join(", ")},
    'fulfillment', CASE WHEN f.merchant_id IS NULL THEN NULL
      ELSE json_object('status', f.status, 'requested_at', f.requested_at, 'delivered_at', f.delivered_at) END,
    'fulfillment_configured', m.fulfillment_url IS NOT NULL)`,
);

/** A stored change's record as `presentTransaction` takes it, read back through drizzle's own column mapping. */
export function recordOfChange(json: string): {
  row: PresentedRow;
  fulfillment: Pick<FulfillmentRow, "status" | "requestedAt" | "deliveredAt"> | null;
  fulfillmentConfigured: boolean;
} {
  const stored = JSON.parse(json) as Record<string, unknown>;
  const row = Object.fromEntries(PRESENTED_COLUMNS.map((key) => [key, COLUMNS[key].mapFromDriverValue(stored[COLUMNS[key].name])]));
  const f = stored.fulfillment as { status: FulfillmentRow["status"]; requested_at: string; delivered_at: string | null } | null;
  return {
    row: row as PresentedRow,
    fulfillment: f ? { status: f.status, requestedAt: f.requested_at, deliveredAt: f.delivered_at } : null,
    fulfillmentConfigured: stored.fulfillment_configured === 1 || stored.fulfillment_configured === true,
  };
}

/** Endpoint `e` takes messages of `type`: enabled or paused (paused keeps them), subscribed exactly or by a wildcard. */
const subscribed = (type: SQL) => sql`e.status IN ('enabled', 'paused')
  AND EXISTS (SELECT 1 FROM json_each(e.events) AS x WHERE x.value IN ('*', 'transaction.*', ${type}))`;

/** The entry fields of `j` (a json_each row of the entries), the transaction's stream `s` as it stood before this apply. */
const entryField = (name: string) => sql.raw(`j.value ->> '$.${name}'`);
const STREAM_BEFORE = sql`LEFT JOIN ${transactionStreams} AS s
  ON s.merchant_id = ${entryField("merchant_id")} AND s.transaction_id = ${entryField("id")}`;
const MESSAGE_COLUMNS = sql.raw(
  "id, merchant_id, endpoint_id, transaction_id, sequence, position, type, status, next_attempt_at, created_at",
);
const NEW_MESSAGE_ID = sql.raw("'msg_' || lower(hex(randomblob(16)))");
/** The latest change of the entry's transaction, once this apply's change (if any) is in. */
const LATEST_CHANGE = sql`c.sequence = (SELECT max(c2.sequence) FROM ${transactionChanges} AS c2
  WHERE c2.merchant_id = ${entryField("merchant_id")} AND c2.transaction_id = ${entryField("id")})`;

/** The merchant of `t` has an endpoint that may take messages: only then is a stream kept (no rows for the others). */
const HAS_ENDPOINT = sql`EXISTS (SELECT 1 FROM ${endpoints} AS e0
  WHERE e0.merchant_id = t.merchant_id AND e0.status IN ('enabled', 'paused'))`;

/**
 * The change each written record made, numbered by the record's own count of status changes, with the record as the
 * upsert left it, for a merchant with an endpoint. A change is a status that differs from the stream's last one (an
 * edit that keeps the status adds nothing); without a stream yet, the status change this write made, if any.
 */
const insertChanges = (
  entries: SQL,
) => sql`INSERT INTO ${transactionChanges} (merchant_id, transaction_id, sequence, previous_status, status, record, created_at)
  SELECT t.merchant_id, t.id, t.status_changes, CASE WHEN ${changedByThisWrite} THEN ${statusBeforeThisWrite} ELSE s.status END, t.status,
    ${RECORD_JSON}, t.updated_at
  FROM ${entries} JOIN ${transactions} AS t ON t.merchant_id = ${entryField("merchant_id")} AND t.id = ${entryField("id")}
    AND t.snapshot_version = ${entryField("version")}
  ${STREAM_BEFORE}
  JOIN ${merchants} AS m ON m.id = t.merchant_id
  LEFT JOIN ${fulfillments} AS f ON f.merchant_id = t.merchant_id AND f.transaction_id = t.id
  WHERE ${HAS_ENDPOINT} AND CASE WHEN s.merchant_id IS NULL THEN ${changedByThisWrite} ELSE t.status IS NOT s.status END
  ON CONFLICT (merchant_id, transaction_id, sequence) DO NOTHING`;

/** One message per subscribed endpoint for each change just inserted (the one numbered right after the stream's last). */
const insertChangeMessages = (entries: SQL) => sql`INSERT INTO ${endpointMessages} (${MESSAGE_COLUMNS})
  SELECT ${NEW_MESSAGE_ID}, c.merchant_id, e.id, c.transaction_id, c.sequence, 2 * c.sequence, 'transaction.' || c.status,
    'pending', ${nowIso}, ${nowIso}
  FROM ${entries} ${STREAM_BEFORE}
  JOIN ${transactionChanges} AS c ON c.merchant_id = ${entryField("merchant_id")} AND c.transaction_id = ${entryField("id")}
    AND c.sequence > coalesce(s.sequence, 0)
  JOIN ${endpoints} AS e ON e.merchant_id = c.merchant_id AND ${subscribed(sql`'transaction.' || c.status`)}
  RETURNING merchant_id, endpoint_id, transaction_id`;

/**
 * A transaction with no stream yet whose change 1 is recorded: all its changes came while an endpoint existed (a new
 * transaction), so an event's capture among them is new too, whatever Smart Router's clock says of it.
 */
const WHOLE_HISTORY_STREAMED = sql`EXISTS (SELECT 1 FROM ${transactionChanges} AS c1
  WHERE c1.merchant_id = c.merchant_id AND c1.transaction_id = c.transaction_id AND c1.sequence = 1)`;

/**
 * `transaction.captured` once per transaction: when its fulfilment row exists (the first capture's outbox, written
 * earlier in this batch) and the stream has not announced it, right after the change that brought it. The fulfilment's
 * backfill rule: a capture read by a batch before the endpoint existed is not announced to it; an event's capture is,
 * unless the transaction has changes from before any endpoint (no stream yet and change 1 unrecorded: its first
 * capture may be older than the endpoint), where a capture Smart Router made before the endpoint existed is not.
 */
const insertCapturedMessages = (entries: SQL) => sql`INSERT INTO ${endpointMessages} (${MESSAGE_COLUMNS})
  SELECT ${NEW_MESSAGE_ID}, c.merchant_id, e.id, c.transaction_id, c.sequence, 2 * c.sequence + 1, 'transaction.captured',
    'pending', ${nowIso}, ${nowIso}
  FROM ${entries} ${STREAM_BEFORE}
  JOIN ${fulfillments} AS f ON f.merchant_id = ${entryField("merchant_id")} AND f.transaction_id = ${entryField("id")}
  JOIN ${transactionChanges} AS c ON c.merchant_id = f.merchant_id AND c.transaction_id = f.transaction_id AND ${LATEST_CHANGE}
  JOIN ${endpoints} AS e ON e.merchant_id = c.merchant_id AND ${subscribed(sql`'transaction.captured'`)}
    AND ((${entryField("capture_by_event")} = 1 AND (s.merchant_id IS NOT NULL OR ${WHOLE_HISTORY_STREAMED})) OR julianday(${entryField("capture_at")}) >= julianday(e.created_at))
  WHERE ${entryField("captured")} = 1 AND NOT coalesce(s.captured, 0)
  RETURNING merchant_id, endpoint_id, transaction_id`;

/** Moves each stream to its latest change, and marks the first capture announced (whether or not an endpoint took it). */
const moveStreams = (entries: SQL) => sql`INSERT INTO ${transactionStreams} (merchant_id, transaction_id, sequence, status, captured)
  SELECT c.merchant_id, c.transaction_id, c.sequence, c.status,
    coalesce(s.captured, 0) OR (${entryField("captured")} = 1 AND f.merchant_id IS NOT NULL)
  FROM ${entries} ${STREAM_BEFORE}
  JOIN ${transactionChanges} AS c ON c.merchant_id = ${entryField("merchant_id")} AND c.transaction_id = ${entryField("id")} AND ${LATEST_CHANGE}
  LEFT JOIN ${fulfillments} AS f ON f.merchant_id = c.merchant_id AND f.transaction_id = c.transaction_id
  JOIN ${transactions} AS t ON t.merchant_id = c.merchant_id AND t.id = c.transaction_id
  WHERE ${HAS_ENDPOINT} AND (c.sequence IS NOT s.sequence OR (${entryField("captured")} = 1 AND f.merchant_id IS NOT NULL AND NOT coalesce(s.captured, 0)))
  ON CONFLICT (merchant_id, transaction_id) DO UPDATE SET sequence = excluded.sequence, status = excluded.status, captured = excluded.captured`;

/**
 * The stream's statements of one apply, pure: the changes, their messages, the first capture's messages, then the
 * streams moved on. Must run after the upsert and the fulfilment outbox of the same D1 batch (transactions/apply.ts),
 * so they see what was actually stored; the stream rows are read before they move, so each statement sees the same
 * "before". Numbers cannot collide: D1 runs one batch at a time, and the batch is one transaction.
 */
export function streamStatements(entries: readonly StreamEntry[]): SQL[] {
  if (entries.length === 0) return [];
  const json = JSON.stringify(
    entries.map((entry) => ({
      merchant_id: entry.merchantId,
      id: entry.transactionId,
      version: entry.version,
      captured: entry.capture ? 1 : 0,
      capture_by_event: entry.capture?.byEvent ? 1 : 0,
      capture_at: entry.capture ? new Date(entry.capture.at).toISOString() : null,
    })),
  );
  const from = sql`json_each(${json}) AS j`;
  return [insertChanges(from), insertChangeMessages(from), insertCapturedMessages(from), moveStreams(from)];
}

/**
 * Nudges the endpoint consumer for the lanes an apply gave a message (queue/messages.ts, `endpointLaneMessageV1`).
 * Never throws: the messages are committed, and the cron sweep nudges a lane whose nudge was lost.
 */
export async function sendLaneNudges(queue: Queue, lanes: readonly EndpointLane[]): Promise<void> {
  await sendAll(
    queue,
    lanes.map((lane) => ({ v: 1, ...lane })),
  ).catch((error: unknown) => {
    log("warn", "endpoint.nudge_failed", { count: lanes.length, error: safeErrorMessage(error) });
  });
}
