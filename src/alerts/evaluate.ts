import { type SQL, sql } from "drizzle-orm";
import { inList, inPairList, insertJsonRows, runBatch, sqlLiterals } from "../db/bulk";
import type { Database } from "../db/client";
import { servedHere } from "../db/fence";
import { afterRow } from "../db/keyset";
import { type AlertSettings, alertScans, alerts, endpoints, events, fulfillments, merchants, transactions } from "../db/schema";
import { ALERT_DEFAULTS, alertThresholds } from "../merchants/alert-thresholds";
import { CAPTURED_STATUSES } from "../smart-router/status";
import {
  AUTHORIZED_STATUSES,
  CARD_PAYMENT_TYPE,
  FORGED_WINDOW_MS,
  MERCHANT_ALERT_KINDS,
  MERCHANT_RULES,
  type MerchantAlertKind,
  type MerchantFacts,
  OPEN_DISPUTE_STATUSES,
  PENDING_STATUSES,
  TRANSACTION_ALERT_KINDS,
  TRANSACTION_RULES,
  type TransactionAlertKind,
  type TransactionFacts,
} from "./rules";
import {
  type AlertConfirmation,
  type AlertOpening,
  type AlertResolution,
  alertsToRecheck,
  confirmAlerts,
  openAlerts,
  resolveAlerts,
} from "./store";

/** A finder returns at most this many conditions per kind and run: a larger backlog opens over the next runs. */
export const FOUND_PER_KIND = 200;
/** …and at most this many of one merchant's, so one merchant's backlog never holds up another's alerts. */
export const FOUND_PER_MERCHANT = 20;
/** Open alerts rechecked per run, least recently checked first: more are rechecked over the next runs. */
export const RECHECKED_PER_RUN = 500;
/**
 * Changed records of one merchant the refund scan reads per run, in the order they changed (its horizon): about 3 changes
 * a second at one run every 5 minutes; a larger backlog is read over the next runs, and holds up no other merchant.
 */
export const SCANNED_PER_MERCHANT = 1_000;
/**
 * Merchants whose changes the refund scan reads per run, least recently read first: a merchant with changes waits at
 * most (merchants with changes / this) runs, however many changes the others have.
 */
export const SCANNED_MERCHANTS_PER_RUN = 50;

/** The merchant's threshold in SQL (`m` is its row): its setting, else the default of rules.ts (both our own numbers). */
const threshold = (key: keyof typeof ALERT_DEFAULTS) => sql`coalesce(m.alert_settings ->> ${`$.${key}`}, ${ALERT_DEFAULTS[key]})`;

/** Our own constant statuses as an SQL list. */
const statusList = (statuses: Iterable<string>) => sql`(${sqlLiterals(statuses)})`;

/** When the money was authorized (`t` is the transaction), as Smart Router recorded it: the last successful authorization result. */
const authorizedAt = sql`(SELECT max(j.value ->> '$.created_at') FROM json_each(t.operation_history) AS j
  WHERE j.value ->> '$.type' = 'authorization' AND j.value ->> '$.is_attempt' = 0 AND j.value ->> '$.has_failed' = 0)`;

/**
 * No alert of `kind` is open for transaction `t`, from the `alerts_open_once` unique index. `+t.id` drops the column's
 * affinity, without which SQLite does not match the index's `coalesce(…)` expression and reads every open alert of the
 * merchant instead.
 */
const noOpenTransactionAlert = (kind: TransactionAlertKind) => sql`NOT EXISTS (SELECT 1 FROM ${alerts} AS a
  WHERE a.merchant_id = t.merchant_id AND a.kind = ${kind} AND coalesce(a.transaction_id, '') = +t.id AND a.state = 'open')`;

/** No alert of `kind` is open for merchant `m` (the same index). */
const noOpenMerchantAlert = (kind: MerchantAlertKind) => sql`NOT EXISTS (SELECT 1 FROM ${alerts} AS a
  WHERE a.merchant_id = m.id AND a.kind = ${kind} AND coalesce(a.transaction_id, '') = '' AND a.state = 'open')`;

/** What rules.ts reads of transaction `t`, its fulfilment `f` and its merchant's settings (`m`), as SQL columns… */
const FACTS_COLUMNS = sql`t.merchant_id, t.id, t.status, t.payment_type, t.currency, t.authorized_amount, t.captured_amount,
  t.refunded_amount, t.created_at, t.updated_at, ${authorizedAt} AS authorized_at, f.status AS fulfillment_status,
  f.delivered_at AS fulfillment_delivered_at, m.alert_settings`;
/** …and the tables they come from: the transaction's fulfilment… */
const FULFILLMENT_JOIN = sql`LEFT JOIN ${fulfillments} AS f ON f.merchant_id = t.merchant_id AND f.transaction_id = t.id`;
/** …and its merchant, when the transactions are known (by key, by range). */
const MERCHANT_JOIN = sql`JOIN ${merchants} AS m ON m.id = t.merchant_id`;
const FACTS_FROM = sql`FROM ${transactions} AS t ${MERCHANT_JOIN} ${FULFILLMENT_JOIN}`;
/**
 * Candidates are looked for merchant by merchant (CROSS JOIN keeps merchants the outer loop), each one's records of the
 * kind's statuses sought in the index named: no index of statuses across merchants exists (0033), and the planner took
 * the payment-type index for `apm_pending`, reading every record that has one.
 */
const CANDIDATES_FROM = sql`FROM ${merchants} AS m
  CROSS JOIN ${transactions} AS t INDEXED BY transactions_merchant_status_updated ON t.merchant_id = m.id ${FULFILLMENT_JOIN}`;

interface FactsColumns {
  merchant_id: string;
  id: string;
  status: string;
  payment_type: string | null;
  currency: string;
  authorized_amount: string;
  captured_amount: string;
  refunded_amount: string;
  created_at: string;
  updated_at: string;
  authorized_at: string | null;
  fulfillment_status: string | null;
  fulfillment_delivered_at: string | null;
  alert_settings: string | null;
}

type FactsRow = TransactionFacts & { settings: AlertSettings | null; updatedAt: string };

const settingsOf = (json: string | null): AlertSettings | null => (json === null ? null : (JSON.parse(json) as AlertSettings));

function factsRow(row: FactsColumns): FactsRow {
  return {
    merchantId: row.merchant_id,
    id: row.id,
    status: row.status,
    paymentType: row.payment_type,
    currency: row.currency,
    authorizedAmount: row.authorized_amount,
    capturedAmount: row.captured_amount,
    refundedAmount: row.refunded_amount,
    createdAt: row.created_at,
    authorizedAt: row.authorized_at,
    fulfillmentStatus: row.fulfillment_status,
    fulfillmentDeliveredAt: row.fulfillment_delivered_at,
    settings: settingsOf(row.alert_settings),
    updatedAt: row.updated_at,
  };
}

/** The narrowing of each time- or state-based kind, in SQL over `t`, `f` and `m`, with the rule's own thresholds. */
function candidateCondition(kind: Exclude<TransactionAlertKind, "refunded_more_than_captured">, nowSeconds: number): SQL {
  switch (kind) {
    case "authorized_not_captured":
      // `unixepoch` reads Smart Router's RFC 3339 times whatever their fraction and offset.
      return sql`t.status IN ${statusList(AUTHORIZED_STATUSES)}
        AND unixepoch(coalesce(${authorizedAt}, t.created_at)) <= ${nowSeconds} - ${threshold("authorized_uncaptured_hours")} * 3600`;
    case "apm_pending":
      return sql`t.status IN ${statusList(PENDING_STATUSES)} AND t.payment_type IS NOT NULL AND t.payment_type != ${CARD_PAYMENT_TYPE}
        AND unixepoch(t.created_at) <= ${nowSeconds} - ${threshold("apm_pending_minutes")} * 60`;
    case "chargeback_after_fulfillment":
      return sql`t.status IN ${statusList(OPEN_DISPUTE_STATUSES)} AND f.status = 'delivered'`;
  }
}

/**
 * Transactions whose condition may hold and that have no open alert of the kind: each merchant's oldest first, at most
 * FOUND_PER_MERCHANT of each, so one merchant's backlog never fills a run. The SQL narrows with the rule's own
 * thresholds so that the FOUND_PER_KIND a run takes are conditions that hold, not young records; the rule in rules.ts
 * still decides, and words the detail.
 */
async function findTransactionCandidates({
  db,
  kind,
  now,
}: {
  db: Database;
  kind: Exclude<TransactionAlertKind, "refunded_more_than_captured">;
  now: number;
}): Promise<FactsRow[]> {
  const nowSeconds = Math.floor(now / 1000);
  const rows = await db.all<FactsColumns>(sql`SELECT * FROM (
      SELECT ${FACTS_COLUMNS}, row_number() OVER (PARTITION BY t.merchant_id ORDER BY t.created_at, t.id) AS place
      ${CANDIDATES_FROM} WHERE ${served} AND ${candidateCondition(kind, nowSeconds)} AND ${noOpenTransactionAlert(kind)}
    ) WHERE place <= ${FOUND_PER_MERCHANT} ORDER BY place, created_at, merchant_id, id LIMIT ${FOUND_PER_KIND}`);
  return rows.map(factsRow);
}

const REFUND_SCAN = "refunded_more_than_captured";
/** The refund scan's row of merchant `''`: the scan has started on this shard (schema/alerts.ts). */
const SCAN_STARTED = "";

/** A merchant's records the refund scan reads in a run: after `from`, up to and including `to` (in (updated_at, id) order). */
type ScanRange = { merchantId: string; from: readonly [string, string]; to: readonly [string, string] };

/** A record's position in its merchant's change order, as a JSON `[updated_at, id]`. */
const POSITION = sql`json_array(t.updated_at, t.id)`;
/** The merchant's records after its watermark (`s`, none: every record), `m` being the merchant. */
const CHANGE_ORDER = [sql`t.updated_at`, sql`t.id`];
const pastMark = sql`t.merchant_id = m.id AND ${afterRow("asc", CHANGE_ORDER, [sql`coalesce(s.updated_at, '')`, sql`coalesce(s.transaction_id, '')`])}`;
/** Merchant `m` is served here (db/fence.ts): a merchant whose move is copying it here, switching it or moved it off waits. */
const served = servedHere(sql`m.id`);

/**
 * The merchants whose changes the refund scan reads this run and each one's range, plus the row saying the scan has
 * started: merchants with a change past their watermark, least recently read first (at most SCANNED_MERCHANTS_PER_RUN),
 * each up to its SCANNED_PER_MERCHANT-th change, else its newest. Each merchant is one seek of
 * `transactions_merchant_updated` (its horizon, N entries of the same index); a merchant not served here waits.
 */
async function scanRanges({ db }: { db: Database }): Promise<{ started: boolean; ranges: ScanRange[] }> {
  const rows = await db.all<{ merchant_id: string; from_at: string; from_id: string; horizon: string | null }>(sql`
    SELECT * FROM (SELECT m.id AS merchant_id, coalesce(s.updated_at, '') AS from_at, coalesce(s.transaction_id, '') AS from_id,
        coalesce((SELECT ${POSITION} FROM ${transactions} AS t WHERE ${pastMark} ORDER BY t.updated_at, t.id
            LIMIT 1 OFFSET ${SCANNED_PER_MERCHANT - 1}),
          (SELECT ${POSITION} FROM ${transactions} AS t WHERE t.merchant_id = m.id ORDER BY t.updated_at DESC, t.id DESC LIMIT 1)) AS horizon
      FROM ${merchants} AS m LEFT JOIN ${alertScans} AS s ON s.merchant_id = m.id AND s.name = ${REFUND_SCAN}
      WHERE ${served} AND EXISTS (SELECT 1 FROM ${transactions} AS t WHERE ${pastMark})
      ORDER BY coalesce(s.scanned_at, ''), m.id LIMIT ${SCANNED_MERCHANTS_PER_RUN})
    UNION ALL SELECT merchant_id, '', '', NULL FROM ${alertScans} WHERE merchant_id = ${SCAN_STARTED} AND name = ${REFUND_SCAN}`);
  const ranges = rows.flatMap(({ merchant_id, from_at, from_id, horizon }): ScanRange[] =>
    horizon === null ? [] : [{ merchantId: merchant_id, from: [from_at, from_id], to: JSON.parse(horizon) as [string, string] }],
  );
  return { started: rows.some((row) => row.merchant_id === SCAN_STARTED && row.horizon === null), ranges };
}

/**
 * Records of captured, refunded payments changed in these ranges, each merchant's in the order they changed. A refunded
 * amount above 0 narrows to records with a refund (the rule, comparing exactly, decides); the ranges come first (CROSS
 * JOIN), so each is a seek of the merchant's index bounded at both ends.
 */
async function changedCaptures({ db, ranges }: { db: Database; ranges: readonly ScanRange[] }): Promise<FactsRow[]> {
  if (ranges.length === 0) return [];
  const bounds = JSON.stringify(ranges.map(({ merchantId, from, to }) => [merchantId, ...from, ...to]));
  const rows = await db.all<FactsColumns>(sql`SELECT ${FACTS_COLUMNS} FROM json_each(${bounds}) AS r CROSS JOIN ${transactions} AS t
      ON t.merchant_id = r.value ->> 0 AND ${afterRow("asc", CHANGE_ORDER, [sql`r.value ->> 1`, sql`r.value ->> 2`])}
        AND (t.updated_at, t.id) <= (r.value ->> 3, r.value ->> 4)
    ${MERCHANT_JOIN} ${FULFILLMENT_JOIN} WHERE t.status IN ${statusList(CAPTURED_STATUSES)} AND CAST(t.refunded_amount AS REAL) > 0
    ORDER BY t.merchant_id, t.updated_at, t.id`);
  return rows.map(factsRow);
}

/**
 * The refund scan: each merchant's records changed past its watermark that may have been refunded beyond their capture,
 * and the statements moving the watermarks past what was read. A refund only ever arrives as a change of the record, so
 * the scan reads each change once instead of every refunded payment on every run. Its horizon: SCANNED_PER_MERCHANT
 * changes of SCANNED_MERCHANTS_PER_RUN merchants a run; it ends for a merchant at its newest record, and a larger backlog
 * is read over the next runs. The first run starts each merchant at its newest record: what was refunded before alerts
 * existed is not looked for.
 */
async function scanChangedCaptures({ db, now }: { db: Database; now: number }): Promise<{ rows: FactsRow[]; watermarks: SQL[] }> {
  const { started, ranges } = await scanRanges({ db });
  if (!started) return { rows: [], watermarks: startScan(new Date(now).toISOString()) };
  const rows = await changedCaptures({ db, ranges });
  return { rows, watermarks: moveScanWatermarks(ranges, new Date(now).toISOString()) };
}

/** Moves each merchant's watermark forward to the end of its range (never back, should two runs overlap). */
const moveScanWatermarks = (ranges: readonly ScanRange[], scannedAt: string): SQL[] =>
  insertJsonRows(
    alertScans,
    ranges.map(({ merchantId, to }) => ({
      merchant_id: merchantId,
      name: REFUND_SCAN,
      updated_at: to[0],
      transaction_id: to[1],
      scanned_at: scannedAt,
    })),
    sql`ON CONFLICT (merchant_id, name) DO UPDATE SET updated_at = excluded.updated_at, transaction_id = excluded.transaction_id,
      scanned_at = excluded.scanned_at
    WHERE ${afterRow("asc", [sql`excluded.updated_at`, sql`excluded.transaction_id`], [sql`alert_scans.updated_at`, sql`alert_scans.transaction_id`])}`,
  );

/**
 * The first run: each merchant's watermark at its newest record, then the row saying the scan has started (a merchant
 * without records gets none: all it will have is ahead). Two first runs at once keep the first's watermarks.
 */
const startScan = (scannedAt: string): SQL[] => [
  sql`INSERT INTO ${alertScans} (merchant_id, name, updated_at, transaction_id, scanned_at)
    SELECT merchant_id, ${REFUND_SCAN}, newest ->> 0, newest ->> 1, ${scannedAt} FROM (SELECT m.id AS merchant_id,
        (SELECT ${POSITION} FROM ${transactions} AS t WHERE t.merchant_id = m.id ORDER BY t.updated_at DESC, t.id DESC LIMIT 1) AS newest
      FROM ${merchants} AS m WHERE ${served})
    WHERE newest IS NOT NULL ON CONFLICT DO NOTHING`,
  sql`INSERT INTO ${alertScans} (merchant_id, name, updated_at, transaction_id, scanned_at)
    VALUES (${SCAN_STARTED}, ${REFUND_SCAN}, '', '', ${scannedAt}) ON CONFLICT DO NOTHING`,
];

/** Merchants whose per-merchant condition may hold and that have no open alert of the kind (at most FOUND_PER_KIND). */
async function findMerchantCandidates({ db, kind, now }: { db: Database; kind: MerchantAlertKind; now: number }): Promise<string[]> {
  const nowSeconds = Math.floor(now / 1000);
  let query: SQL;
  switch (kind) {
    case "smart_router_key_refused":
      query = sql`SELECT m.id FROM ${merchants} AS m WHERE m.smart_router_key_refused_at IS NOT NULL AND ${served} AND ${noOpenMerchantAlert(kind)}`;
      break;
    case "forged_delivery_spike":
      // Merchants first, each one's rejected rows of the window from `events_rejected_processed`.
      query = sql`SELECT m.id FROM ${merchants} AS m CROSS JOIN ${events} AS e ON e.merchant_id = m.id
        WHERE e.outcome = 'rejected' AND e.processed_at > ${new Date(now - FORGED_WINDOW_MS).toISOString()} AND ${served}
          AND ${noOpenMerchantAlert(kind)}
        GROUP BY m.id HAVING sum(e.deliveries) >= ${threshold("forged_per_hour")}`;
      break;
    case "fulfillment_failing": {
      // Pending rows come from `fulfillments_pending`, unacknowledged dead letters from their partial index: few at a time,
      // whatever the number of delivered or acknowledged ones. A merchant qualifies when either kind's oldest is old enough.
      const oldEnough = sql`unixepoch(min(f.requested_at)) <= ${nowSeconds} - ${threshold("fulfillment_failing_minutes")} * 60`;
      query = sql`SELECT m.id FROM ${fulfillments} AS f JOIN ${merchants} AS m ON m.id = f.merchant_id
          WHERE ${IS_RETRYING} AND ${served} AND ${noOpenMerchantAlert(kind)} GROUP BY m.id HAVING ${oldEnough}
        UNION SELECT m.id FROM ${DEAD_LETTERED_FROM} JOIN ${merchants} AS m ON m.id = f.merchant_id
          WHERE ${IS_DEAD_LETTERED} AND ${served} AND ${noOpenMerchantAlert(kind)} GROUP BY m.id HAVING ${oldEnough}`;
      break;
    }
    case "endpoint_disabled":
      // Usually opened as the endpoint is disabled (src/endpoints/alert.ts); found here should that write have failed.
      query = sql`SELECT DISTINCT m.id FROM ${endpoints} AS e JOIN ${merchants} AS m ON m.id = e.merchant_id
        WHERE e.status = 'disabled' AND ${served} AND ${noOpenMerchantAlert(kind)}`;
      break;
  }
  const rows = await db.all<{ id: string }>(sql`${query} LIMIT ${FOUND_PER_KIND}`);
  return rows.map((row) => row.id);
}

/** Pending after a failed attempt, or given up for good and not acknowledged: what keeps `fulfillment_failing` open. */
const IS_RETRYING = sql`f.status = 'pending' AND f.attempts > 0 AND f.last_error IS NOT NULL`;
const IS_DEAD_LETTERED = sql`f.status = 'failed' AND f.failure_acknowledged_at IS NULL`;
/**
 * Dead letters are read through their partial index by name: the planner, without statistics, would take
 * the primary key and read every failed row, acknowledged ones included, which only ever grow.
 */
const DEAD_LETTERED_FROM = sql`${fulfillments} AS f INDEXED BY fulfillments_failed_unacknowledged`;

type MerchantFactsRow = MerchantFacts & { settings: AlertSettings | null };

/** The facts rules.ts reads of these merchants: key refusal, forged deliveries of the window, failing fulfilments. */
async function merchantFacts({
  db,
  merchantIds,
  now,
}: {
  db: Database;
  merchantIds: readonly string[];
  now: number;
}): Promise<Map<string, MerchantFactsRow>> {
  if (merchantIds.length === 0) return new Map();
  const retrying = sql`FROM ${fulfillments} AS f WHERE f.merchant_id = m.id AND ${IS_RETRYING}`;
  const deadLettered = sql`FROM ${DEAD_LETTERED_FROM} WHERE f.merchant_id = m.id AND ${IS_DEAD_LETTERED}`;
  // The oldest failing notification of either kind, each read from its own index.
  const oldest = (column: SQL) => sql`(SELECT ${column} FROM (
      SELECT * FROM (SELECT f.requested_at, f.last_error ${retrying} ORDER BY f.requested_at LIMIT 1)
      UNION ALL SELECT * FROM (SELECT f.requested_at, f.last_error ${deadLettered} ORDER BY f.requested_at LIMIT 1)
    ) ORDER BY requested_at LIMIT 1)`;
  const rows = await db.all<{
    id: string;
    alert_settings: string | null;
    refused_at: string | null;
    refused_reason: string | null;
    forged: number;
    failing: number;
    dead_lettered: number;
    failing_since: string | null;
    failing_error: string | null;
    disabled_endpoints: string | null;
  }>(sql`SELECT m.id, m.alert_settings, m.smart_router_key_refused_at AS refused_at, m.smart_router_key_refused_reason AS refused_reason,
      (SELECT coalesce(sum(e.deliveries), 0) FROM ${events} AS e
        WHERE e.merchant_id = m.id AND e.outcome = 'rejected' AND e.processed_at > ${new Date(now - FORGED_WINDOW_MS).toISOString()}) AS forged,
      (SELECT count(*) ${retrying}) + (SELECT count(*) ${deadLettered}) AS failing,
      (SELECT count(*) ${deadLettered}) AS dead_lettered,
      ${oldest(sql`requested_at`)} AS failing_since,
      ${oldest(sql`last_error`)} AS failing_error,
      (SELECT json_group_array(e.id) FROM ${endpoints} AS e WHERE e.merchant_id = m.id AND e.status = 'disabled') AS disabled_endpoints
    FROM ${merchants} AS m WHERE ${inList(sql`m.id`, merchantIds)}`);
  return new Map(
    rows.map((row) => [
      row.id,
      {
        merchantId: row.id,
        settings: settingsOf(row.alert_settings),
        keyRefusedAt: row.refused_at,
        keyRefusedReason: row.refused_reason,
        forgedLastHour: row.forged,
        failingFulfillments: row.failing,
        deadLetteredFulfillments: row.dead_lettered,
        failingSince: row.failing_since,
        failingError: row.failing_error,
        disabledEndpoints: (JSON.parse(row.disabled_endpoints ?? "[]") as string[]).sort(),
      },
    ]),
  );
}

/** What the rules read in a run: transactions keyed by `transactionKey`, merchants by id. */
type Facts = { transactions: Map<string, FactsRow>; merchants: Map<string, MerchantFactsRow> };

const isTransactionKind = (kind: string): kind is TransactionAlertKind => (TRANSACTION_ALERT_KINDS as readonly string[]).includes(kind);
const isMerchantKind = (kind: string): kind is MerchantAlertKind => (MERCHANT_ALERT_KINDS as readonly string[]).includes(kind);
const transactionKey = (merchantId: string, transactionId: string) => JSON.stringify([merchantId, transactionId]);

/** Whether an open alert's condition still holds, and its detail of now; an alert of a kind no rule knows holds no more. */
function recheck(
  alert: { kind: string; merchantId: string; transactionId: string | null },
  facts: Facts,
  now: number,
): { detail: string | null; settings: AlertSettings | null } {
  if (isTransactionKind(alert.kind) && alert.transactionId !== null) {
    const t = facts.transactions.get(transactionKey(alert.merchantId, alert.transactionId));
    // A record no longer stored (archived, removed) holds no condition.
    if (!t) return { detail: null, settings: null };
    return { detail: TRANSACTION_RULES[alert.kind](t, alertThresholds(t.settings), now), settings: t.settings };
  }
  const m = facts.merchants.get(alert.merchantId);
  if (!isMerchantKind(alert.kind) || !m) return { detail: null, settings: m?.settings ?? null };
  return { detail: MERCHANT_RULES[alert.kind](m, alertThresholds(m.settings), now), settings: m.settings };
}

type TransactionKey = readonly [merchantId: string, transactionId: string];

/** The facts of these transactions (the open alerts being rechecked), keyed by merchant and id. */
async function transactionFactsOf({ db, keys }: { db: Database; keys: readonly TransactionKey[] }): Promise<Map<string, FactsRow>> {
  if (keys.length === 0) return new Map();
  const rows = await db.all<FactsColumns>(sql`SELECT ${FACTS_COLUMNS} ${FACTS_FROM}
    WHERE ${inPairList([sql`t.merchant_id`, sql`t.id`], keys)}`);
  return new Map(rows.map((row) => [transactionKey(row.merchant_id, row.id), factsRow(row)]));
}

type RecheckableAlert = Awaited<ReturnType<typeof alertsToRecheck>>[number];

/** The transactions each per-transaction kind may alert on: the refund scan's changed records, then each finder's. */
async function findTransactionConditions({ db, scanned, now }: { db: Database; scanned: FactsRow[]; now: number }) {
  const found: [TransactionAlertKind, FactsRow[]][] = [["refunded_more_than_captured", scanned]];
  for (const kind of ["authorized_not_captured", "apm_pending", "chargeback_after_fulfillment"] as const) {
    found.push([kind, await findTransactionCandidates({ db, kind, now })]);
  }
  return found;
}

/** The merchants each per-merchant kind may alert on. */
async function findMerchantConditions({ db, now }: { db: Database; now: number }): Promise<Map<MerchantAlertKind, string[]>> {
  const found = new Map<MerchantAlertKind, string[]>();
  for (const kind of MERCHANT_ALERT_KINDS) found.set(kind, await findMerchantCandidates({ db, kind, now }));
  return found;
}

/** The facts the rules read: of every merchant found or rechecked per merchant, and of every transaction rechecked. */
async function factsOf({
  db,
  merchantConditions,
  recheckable,
  now,
}: {
  db: Database;
  merchantConditions: Map<MerchantAlertKind, string[]>;
  recheckable: readonly RecheckableAlert[];
  now: number;
}): Promise<Facts> {
  const merchantIds = new Set([
    ...[...merchantConditions.values()].flat(),
    ...recheckable.filter((a) => a.transactionId === null).map((a) => a.merchantId),
  ]);
  return {
    merchants: await merchantFacts({ db, merchantIds: [...merchantIds], now }),
    transactions: await transactionFactsOf({
      db,
      keys: recheckable.flatMap((a) => (a.transactionId === null ? [] : [[a.merchantId, a.transactionId] as const])),
    }),
  };
}

/** The alerts to open: each condition found whose rule holds, per-transaction kinds first, each in the order found. */
function openingsOf(
  transactionConditions: readonly [TransactionAlertKind, FactsRow[]][],
  merchantConditions: Map<MerchantAlertKind, string[]>,
  facts: Facts,
  now: number,
): AlertOpening[] {
  const openings: AlertOpening[] = [];
  for (const [kind, rows] of transactionConditions) {
    for (const t of rows) {
      const detail = TRANSACTION_RULES[kind](t, alertThresholds(t.settings), now);
      if (detail !== null) openings.push({ merchantId: t.merchantId, kind, transactionId: t.id, detail, settings: t.settings });
    }
  }
  for (const [kind, ids] of merchantConditions) {
    for (const merchantId of ids) {
      const m = facts.merchants.get(merchantId);
      const detail = m ? MERCHANT_RULES[kind](m, alertThresholds(m.settings), now) : null;
      if (m && detail !== null) openings.push({ merchantId, kind, transactionId: null, detail, settings: m.settings });
    }
  }
  return openings;
}

/** The open alerts rechecked: resolved where the condition no longer holds, else confirmed with the detail of now. */
function recheckAll(recheckable: readonly RecheckableAlert[], facts: Facts, now: number) {
  const resolutions: AlertResolution[] = [];
  const confirmations: AlertConfirmation[] = [];
  for (const alert of recheckable) {
    const { detail, settings } = recheck(alert, facts, now);
    if (detail === null) resolutions.push({ id: alert.id, settings });
    else confirmations.push({ id: alert.id, detail });
  }
  return { resolutions, confirmations };
}

/**
 * Writes a run in one D1 batch: openings, resolutions, confirmations and the refund scan's watermarks. Counts what the
 * statements' RETURNING rows say was actually opened and resolved, another run's work left out.
 */
async function commitRun({
  db,
  openings,
  resolutions,
  confirmations,
  watermarks,
  now,
}: {
  db: Database;
  openings: readonly AlertOpening[];
  resolutions: readonly AlertResolution[];
  confirmations: readonly AlertConfirmation[];
  watermarks: readonly SQL[];
  now: number;
}): Promise<{ opened: number; resolved: number }> {
  const opening = openAlerts({ openings, now });
  const resolving = resolveAlerts({ resolutions, now });
  const statements = [...opening, ...resolving, ...confirmAlerts({ confirmations, now }), ...watermarks];
  const results = statements.length > 0 ? await runBatch(db.$client, statements) : [];
  const returned = (from: number, count: number) =>
    results.slice(from, from + count).reduce((sum, result) => sum + result.results.length, 0);
  return { opened: returned(0, opening.length), resolved: returned(opening.length, resolving.length) };
}

/**
 * One evaluation of every rule for every merchant, bounded: each finder takes at most FOUND_PER_KIND new conditions,
 * the refund scan SCANNED_PER_MERCHANT changed records of SCANNED_MERCHANTS_PER_RUN merchants, and RECHECKED_PER_RUN
 * open alerts are rechecked. Conditions found open alerts (one per merchant, kind and transaction, whatever number of runs find them); open alerts whose condition
 * no longer holds resolve. Everything is written in one D1 batch.
 */
export async function evaluateAlerts({ db, now }: { db: Database; now: number }) {
  const scan = await scanChangedCaptures({ db, now });
  const transactionConditions = await findTransactionConditions({ db, scanned: scan.rows, now });
  const recheckable = await alertsToRecheck({ db, limit: RECHECKED_PER_RUN });
  const merchantConditions = await findMerchantConditions({ db, now });
  const facts = await factsOf({ db, merchantConditions, recheckable, now });
  const openings = openingsOf(transactionConditions, merchantConditions, facts, now);
  const { resolutions, confirmations } = recheckAll(recheckable, facts, now);
  const written = await commitRun({ db, openings, resolutions, confirmations, watermarks: scan.watermarks, now });
  return { alerts_opened: written.opened, alerts_resolved: written.resolved, alerts_rechecked: recheckable.length };
}
