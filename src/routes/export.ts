import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { merchantCacheHeaders } from "../http/cache";
import { type MerchantContext, requireMerchantKey } from "../http/merchant-auth";
import { errors, security } from "../http/openapi";
import { limitPerApiKey } from "../http/status-rate-limit";
import { strictQuery } from "../transactions/api-schemas";
import { EXPORT_FORMATS, EXPORT_PAGE_SIZE, MAX_EXPORT_RANGE_DAYS, openExport } from "../transactions/export";
import { MAX_CONCURRENT_EXPORTS } from "../transactions/export-slots";

const DAY_MS = 86_400_000;
const instant = (name: string, description: string) =>
  z.iso
    .datetime({ offset: true, error: `${name} must be one ISO 8601 date-time with a time zone, e.g. 2026-01-01T00:00:00Z` })
    .openapi({ description, example: "2026-01-01T00:00:00Z" });

/** Query of `GET /v1/transactions/export`. */
const exportQuery = strictQuery({
  created_after: instant("created_after", "Transactions Smart Router created at or after this instant."),
  created_before: instant("created_before", "Transactions created strictly before this instant."),
  format: z
    .enum(EXPORT_FORMATS, { error: "format must be csv or ndjson" })
    .optional()
    .openapi({ default: "csv", description: "`csv` (a header row, then one row per transaction) or `ndjson` (one JSON object per line)." }),
})
  .refine((query) => Date.parse(query.created_after) < Date.parse(query.created_before), {
    message: "created_before must be after created_after",
    path: ["created_before"],
  })
  .refine((query) => Date.parse(query.created_before) - Date.parse(query.created_after) <= MAX_EXPORT_RANGE_DAYS * DAY_MS, {
    message: `created_before may be at most ${MAX_EXPORT_RANGE_DAYS} days after created_after; export a longer period range by range`,
    path: ["created_before"],
  });

const exportRoute = createRoute({
  method: "get",
  path: "/",
  summary: "Export transactions",
  description:
    `Every transaction created in [created_after, created_before), at most ${MAX_EXPORT_RANGE_DAYS} days, oldest first (ties by id), ` +
    "streamed: transactions whose history was archived are included, since the record itself always stays. CSV follows " +
    "RFC 4180 (CRLF, fields quoted when needed) with the status API's fields flattened (`metadata` as JSON, `last_event_*`, " +
    "`fulfillment_*`); amounts are Smart Router's decimal strings; every other text cell starting with `=`, `+`, `-`, `@`, " +
    "tab or carriage return is prefixed with `'`, and one holding `,`, `;`, a quote or a line break is quoted (a formula " +
    "character after a `;` or line break inside it gets a `'` too), so spreadsheets do not evaluate it. NDJSON lines are the status API's " +
    `transaction objects, untouched. Read from D1 ${EXPORT_PAGE_SIZE} rows at a time; a failure mid-way cuts the response ` +
    `off (an incomplete body), never a shorter file that looks whole. At most ${MAX_CONCURRENT_EXPORTS} exports of a merchant ` +
    "stream at once, whichever API keys asked for them.",
  tags: ["Transactions"],
  security,
  request: { query: exportQuery },
  responses: {
    200: {
      description: "The transactions of the range.",
      headers: {
        "Content-Disposition": {
          description: "`attachment` with a file name naming the merchant and the range.",
          schema: { type: "string" as const },
        },
      },
      content: {
        "text/csv": { schema: z.string().openapi({ example: "id,status,amount,currency,…\r\ntr_2aB3,completed,10.50,EUR,…\r\n" }) },
        "application/x-ndjson": { schema: z.string().openapi({ example: '{"id":"tr_2aB3","status":"completed",…}\n' }) },
      },
    },
    ...errors,
    429: {
      ...errors[429],
      description:
        `\`rate_limited\`: too many requests for this API key, or ${MAX_CONCURRENT_EXPORTS} exports of this merchant are ` +
        "streaming already (retry once one has ended).",
    },
  },
});

/** `20260101T000000Z` of an instant: what a file name can carry. */
const compact = (at: number) => new Date(at).toISOString().replace(/[-:]|\.\d+/g, "");

/** `/v1/transactions/export`: mounted before `/v1/transactions`, so `export` is never taken for a transaction id. */
export const exportRoutes = new OpenAPIHono<MerchantContext>();

exportRoutes.use(requireMerchantKey(), limitPerApiKey());

exportRoutes.openapi(exportRoute, async (c) => {
  const query = c.req.valid("query");
  const format = query.format ?? "csv";
  const after = Date.parse(query.created_after);
  const before = Date.parse(query.created_before);
  const merchant = c.var.merchant;
  const filename = `transactions-${merchant.id}-${compact(after)}-${compact(before)}.${format}`;
  const body = await openExport({ db: c.var.db, merchant, after, before, format });
  return c.body(body, 200, {
    "Content-Type": format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson",
    "Content-Disposition": `attachment; filename="${filename}"`,
    // Per-merchant data, possibly large: never stored by a cache.
    ...merchantCacheHeaders("no-store"),
  });
});
