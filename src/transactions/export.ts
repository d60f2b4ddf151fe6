import { and, asc, eq, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { afterRow } from "../db/keyset";
import { fulfillments, transactions } from "../db/schema";
import { log } from "../lib/log";
import { presentTransaction } from "./present";
import { joinFulfillment, type MerchantScope, transactionWithFulfillment } from "./queries";

/** Rows read from D1 per page; the stream holds about one page at a time, however long the range. */
export const EXPORT_PAGE_SIZE = 500;
/** The widest range one export covers: a longer one would outlast a request's CPU budget; ask month by month. */
export const MAX_EXPORT_RANGE_DAYS = 31;
export const EXPORT_FORMATS = ["csv", "ndjson"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

type PresentedTransaction = ReturnType<typeof presentTransaction>;

/** The CSV columns, in order: the status API's transaction, `last_event` and `fulfillment` flattened. */
const CSV_COLUMNS: readonly [string, (t: PresentedTransaction) => string | boolean | null][] = [
  ["id", (t) => t.id],
  ["status", (t) => t.status],
  ["amount", (t) => t.amount],
  ["currency", (t) => t.currency],
  ["authorized_amount", (t) => t.authorized_amount],
  ["captured_amount", (t) => t.captured_amount],
  ["refunded_amount", (t) => t.refunded_amount],
  ["available_amount", (t) => t.available_amount],
  ["payment_type", (t) => t.payment_type],
  ["gateway_name", (t) => t.gateway_name],
  ["invoice_id", (t) => t.invoice_id],
  ["name", (t) => t.name],
  ["metadata", (t) => JSON.stringify(t.metadata)],
  ["sandbox", (t) => t.sandbox],
  ["created_at", (t) => t.created_at],
  ["updated_at", (t) => t.updated_at],
  ["last_event_id", (t) => t.last_event?.id ?? null],
  ["last_event_name", (t) => t.last_event?.name ?? null],
  ["last_event_fired_at", (t) => t.last_event?.fired_at ?? null],
  ["fulfillment_status", (t) => t.fulfillment.status],
  ["fulfillment_requested_at", (t) => t.fulfillment.requested_at],
  ["fulfillment_delivered_at", (t) => t.fulfillment.delivered_at],
];

/** Columns the merchant's customers or Smart Router fill with free text: where a spreadsheet formula could hide. */
const FREE_TEXT_COLUMNS: ReadonlySet<string> = new Set([
  "payment_type",
  "gateway_name",
  "invoice_id",
  "name",
  "metadata",
  "last_event_name",
]);

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break, quotes doubled. A free-text value
 * starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so a spreadsheet shows it instead of
 * evaluating it (CSV injection); amounts, ids and times are never touched.
 */
export function csvField(column: string, value: string | boolean | null): string {
  if (value === null) return "";
  let text = String(value);
  if (FREE_TEXT_COLUMNS.has(column) && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

const csvLine = (fields: string[]) => `${fields.join(",")}\r\n`;

/** Where a page stopped: the last row's creation time on julianday's scale, and its id. */
interface ExportPosition {
  createdDay: number;
  id: string;
}

/**
 * One keyset page of the merchant's transactions created in [after, before), oldest first, ties by id, strictly after
 * `position`; served by `transactions_merchant_created` with no sort step.
 */
export function exportPageQuery({
  db,
  merchantId,
  after,
  before,
  position,
}: {
  db: Database;
  merchantId: string;
  /** Epoch ms, as every instant here; bound as ISO 8601 for `julianday`. */
  after: number;
  before: number;
  position?: ExportPosition;
}) {
  const createdDay = sql<number>`julianday(${transactions.createdAt})`;
  return db
    .select({ ...transactionWithFulfillment, createdDay })
    .from(transactions)
    .leftJoin(fulfillments, joinFulfillment)
    .where(
      and(
        eq(transactions.merchantId, merchantId),
        sql`${createdDay} >= julianday(${new Date(after).toISOString()})`,
        sql`${createdDay} < julianday(${new Date(before).toISOString()})`,
        afterRow("asc", [createdDay, transactions.id], position && [position.createdDay, position.id]),
      ),
    )
    .orderBy(asc(createdDay), asc(transactions.id))
    .limit(EXPORT_PAGE_SIZE);
}

/**
 * Streams every transaction of the merchant created in [after, before) (epoch ms) as CSV (a header row first) or
 * NDJSON (one status API transaction per line). Each pull of the stream reads one page after the last row sent, so
 * memory stays at one page; the walk ends at the first page shorter than EXPORT_PAGE_SIZE (the range is finite and
 * every page starts strictly after the previous one). A D1 failure mid-way errors the stream: the response is cut off
 * and the client's HTTP library reports an incomplete body, never a short file that looks whole.
 */
export function exportTransactions({
  db,
  merchant,
  after,
  before,
  format,
}: {
  db: Database;
  merchant: MerchantScope;
  after: number;
  before: number;
  format: ExportFormat;
}): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let position: ExportPosition | undefined;
  let started = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const rows = await exportPageQuery({ db, merchantId: merchant.id, after, before, position });
        const presented = rows.map((row) => presentTransaction(row.transaction, row.fulfillment, merchant.fulfillmentConfigured));
        const lines = presented.map((transaction) =>
          format === "csv"
            ? csvLine(CSV_COLUMNS.map(([column, value]) => csvField(column, value(transaction))))
            : `${JSON.stringify(transaction)}\n`,
        );
        if (!started && format === "csv") lines.unshift(csvLine(CSV_COLUMNS.map(([column]) => column)));
        started = true;
        if (lines.length > 0) controller.enqueue(encoder.encode(lines.join("")));
        const last = rows.at(-1);
        if (rows.length < EXPORT_PAGE_SIZE || !last) controller.close();
        else position = { createdDay: last.createdDay, id: last.transaction.id };
      } catch (error) {
        log("error", "export.failed", { merchant_id: merchant.id, error: String(error) });
        controller.error(error);
      }
    },
  });
}
