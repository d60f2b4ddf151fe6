import { and, asc, eq, sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { safeErrorMessage } from "../db/errors";
import { afterRow } from "../db/keyset";
import { fulfillments, transactions } from "../db/schema";
import { log } from "../lib/log";
import { type ExportSlot, takeExportSlot } from "./export-slots";
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

/**
 * Amount columns: decimal strings (Smart Router's, as stored). A well-formed one is written as it is, so `-10.00` stays a
 * number a spreadsheet can add up (a negative number is not a formula); anything else in them is guarded as text.
 */
const AMOUNT_COLUMNS: ReadonlySet<string> = new Set([
  "amount",
  "authorized_amount",
  "captured_amount",
  "refunded_amount",
  "available_amount",
]);
const DECIMAL = /^-?\d+(\.\d+)?$/;

/** What a spreadsheet may evaluate at the start of a cell (OWASP's CSV-injection list). */
const FORMULA_LEAD = /^[=+\-@\t\r]/;
/**
 * Where a reader that splits on `;`, a tab or a line break without honouring our quotes (a spreadsheet whose locale's
 * list separator is `;` opens a comma CSV so) starts a cell inside a field: before a formula lead, a `"` (which it may
 * take as opening a field) or the field's end (our closing quote).
 */
const CELL_BREAK_BEFORE_FORMULA = /([;\t\r\n])(?=[=+\-@\t\r"]|$)/g;
/** A field holding a separator (`,`, or `;` / tab for other locales), a quote or a line break is quoted (RFC 4180). */
const NEEDS_QUOTES = /[",;\t\r\n]/;

const quoted = (text: string) => `"${text.replaceAll('"', '""')}"`;

/**
 * One CSV field. Every text column, whoever filled it (Smart Router, the merchant's customers, us), is guarded against
 * formula injection: a value starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'` inside a
 * quoted field, and so does every cell a `;`- or tab-splitting reader would start inside it (after a `;`, a tab or a line
 * break). Well-formed amounts and booleans are written as they are. NDJSON carries every value untouched.
 */
export function csvField(column: string, value: string | boolean | null): string {
  if (value === null) return "";
  const text = String(value);
  if (typeof value === "boolean" || (AMOUNT_COLUMNS.has(column) && DECIMAL.test(text))) return text;
  const guarded = text.replace(CELL_BREAK_BEFORE_FORMULA, "$1'");
  if (FORMULA_LEAD.test(guarded)) return quoted(`'${guarded}`);
  return NEEDS_QUOTES.test(guarded) ? quoted(guarded) : guarded;
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

/** What an export streams: the merchant's transactions created in [after, before) (epoch ms), in `format`. */
export interface ExportRequest {
  db: Database;
  merchant: MerchantScope;
  after: number;
  before: number;
  format: ExportFormat;
}

/**
 * Takes one of the merchant's export slots (429 when both are streaming: src/transactions/export-slots.ts), then streams
 * the export, the slot renewed while it runs and released when it ends, fails or is cancelled.
 */
export async function openExport(request: ExportRequest): Promise<ReadableStream<Uint8Array>> {
  const slot = await takeExportSlot({ db: request.db, merchantId: request.merchant.id });
  return exportTransactions({ ...request, slot });
}

/** The lines of one page: a CSV row per transaction (the header row before the first page), or an NDJSON line. */
function exportLines(presented: PresentedTransaction[], format: ExportFormat, first: boolean): string[] {
  const lines = presented.map((transaction) =>
    format === "csv"
      ? csvLine(CSV_COLUMNS.map(([column, value]) => csvField(column, value(transaction))))
      : `${JSON.stringify(transaction)}\n`,
  );
  if (first && format === "csv") lines.unshift(csvLine(CSV_COLUMNS.map(([column]) => column)));
  return lines;
}

/**
 * Streams every transaction of the merchant created in [after, before) (epoch ms) as CSV (a header row first) or
 * NDJSON (one status API transaction per line). Each pull of the stream reads one page after the last row sent, so
 * memory stays at one page; the walk ends at the first page shorter than EXPORT_PAGE_SIZE (the range is finite and
 * every page starts strictly after the previous one). A D1 failure mid-way errors the stream: the response is cut off
 * and the client's HTTP library reports an incomplete body, never a short file that looks whole. The slot is released
 * before the stream closes, so a client that has read the whole file can start its next export at once.
 */
export function exportTransactions({
  db,
  merchant,
  after,
  before,
  format,
  slot,
}: ExportRequest & { slot: ExportSlot }): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let position: ExportPosition | undefined;
  let started = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        await slot.renew();
        const rows = await exportPageQuery({ db, merchantId: merchant.id, after, before, position });
        const presented = rows.map((row) => presentTransaction(row.transaction, row.fulfillment, merchant.fulfillmentConfigured));
        const lines = exportLines(presented, format, !started);
        started = true;
        if (lines.length > 0) controller.enqueue(encoder.encode(lines.join("")));
        const last = rows.at(-1);
        if (rows.length < EXPORT_PAGE_SIZE || !last) {
          await slot.release();
          controller.close();
        } else position = { createdDay: last.createdDay, id: last.transaction.id };
      } catch (error) {
        log("error", "export.failed", { merchant_id: merchant.id, error: safeErrorMessage(error) });
        await slot.release();
        controller.error(error);
      }
    },
    // The client went away: its slot is free for the next export.
    cancel: () => slot.release(),
  });
}
