import { z } from "@hono/zod-openapi";
import { FULFILLMENT_STATUSES } from "../db/schema";
import { ERROR_CODES, type ErrorCode } from "../errors";
import { TRANSACTION_STATUSES } from "../smart-router/status";
import { MAX_REFERENCE_LENGTH } from "./references";

/** Page size when `limit` is absent, and the most one page may hold (contract.md: `limit` ≤ 100). */
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 100;

// Query strings may repeat a key (`?limit=1&limit=2`); the validator then hands over an array, which gets its own message.
const givenOnce = (name: string, hint: string) => (issue: { input?: unknown }) =>
  Array.isArray(issue.input) ? `${name} must be given once` : hint;

const LIMIT_HINT = `limit must be an integer from 1 to ${MAX_PAGE_SIZE}`;
const PAYMENT_TYPE_HINT = "payment_type must be 1-64 characters of letters, digits, _ . : and -, e.g. card";
const STATUS_HINT = `status must be one of: ${TRANSACTION_STATUSES.join(", ")}`;
const UPDATED_AFTER_HINT = "updated_after must be an ISO 8601 date-time with a time zone, e.g. 2026-01-31T12:00:00Z";
const CURSOR_HINT = "cursor must be the next_cursor of a previous page, unchanged";
const REFERENCE_HINT = `reference must be 1-${MAX_REFERENCE_LENGTH} characters: the merchant's invoice_id, name, or metadata order_id or reference`;
/** The longest cursor: one carrying a reference of MAX_REFERENCE_LENGTH characters, JSON-escaped, in base64url. */
export const MAX_CURSOR_LENGTH = 2048;

/** Every query parameter of a route is named in its schema; anything else is a 400 naming the stranger. */
export function strictQuery<Shape extends z.ZodRawShape>(shape: Shape) {
  const allowed = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `unknown query parameter ${issue.keys.map((key) => `"${key}"`).join(", ")}; ${
            allowed.length > 0 ? `allowed: ${allowed.join(", ")}` : "this endpoint takes none"
          }`
        : undefined,
  });
}

/** Query of `GET /v1/transactions`. */
export const listTransactionsQuery = strictQuery({
  status: z
    .enum(TRANSACTION_STATUSES, { error: givenOnce("status", STATUS_HINT) })
    .optional()
    .openapi({ description: "Only transactions currently in this status." }),
  updated_after: z.iso
    .datetime({ offset: true, error: givenOnce("updated_after", UPDATED_AFTER_HINT) })
    .optional()
    .openapi({
      description:
        "Only transactions whose record changed strictly after this instant (millisecond precision). `updated_at` is " +
        "stamped when a change commits, in commit order, but two commits can share a millisecond: to poll without " +
        "missing a change, pass the newest `updated_at` seen minus 1 ms and skip records already seen at that `updated_at`.",
      example: "2026-01-31T12:00:00Z",
    }),
  payment_type: z
    .string({ error: givenOnce("payment_type", PAYMENT_TYPE_HINT) })
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/, PAYMENT_TYPE_HINT)
    .optional()
    .openapi({ description: "Only transactions of this Smart Router payment type (`card`, or an APM's name).", example: "card" }),
  reference: z
    .string({ error: givenOnce("reference", REFERENCE_HINT) })
    .min(1, REFERENCE_HINT)
    // Characters as SQLite counts them (code points), the rule the stored references follow.
    .refine((value) => [...value].length <= MAX_REFERENCE_LENGTH, REFERENCE_HINT)
    .optional()
    .openapi({
      minLength: 1,
      maxLength: MAX_REFERENCE_LENGTH,
      description:
        "Only transactions carrying this reference of the merchant's own: Smart Router's `invoice_id`, the transaction's `name`, or a " +
        "`metadata` value under `order_id` or `reference`. Exact, case-sensitive equality; combines with the other filters. Found " +
        `through an index of those values (at most ${MAX_REFERENCE_LENGTH} characters each; longer values are not indexed).`,
      example: "order-10042",
    }),
  limit: z
    .string({ error: givenOnce("limit", LIMIT_HINT) })
    .regex(/^[0-9]{1,3}$/, LIMIT_HINT)
    .transform(Number)
    .pipe(z.int().min(1, LIMIT_HINT).max(MAX_PAGE_SIZE, LIMIT_HINT))
    .optional()
    .openapi({ type: "integer", minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE, description: "Page size." }),
  cursor: z
    .string({ error: givenOnce("cursor", CURSOR_HINT) })
    .min(1, CURSOR_HINT)
    .max(MAX_CURSOR_LENGTH, CURSOR_HINT)
    .optional()
    .openapi({
      description:
        "The `next_cursor` of the previous page. It carries the filters of the first request: repeat them unchanged or leave them out.",
    }),
});

/** `limit` and `cursor` of a plain keyset list (`GET /v1/batches`, `GET /admin/merchants`): the same rules as the transactions list. */
export const pageQuery = strictQuery({ limit: listTransactionsQuery.shape.limit, cursor: listTransactionsQuery.shape.cursor });

/** Single reads take no query parameters. */
export const noQuery = strictQuery({});

/** Request headers single reads document (validation only checks their type). */
export const conditionalHeaders = z.object({
  "if-none-match": z.string().optional().openapi({ description: "An ETag from an earlier response: 304 while it still matches." }),
});

/** `{id}` of the per-transaction routes: Smart Router's transaction id. */
export const transactionIdParams = z.object({
  id: z
    .string()
    .min(1)
    .max(128)
    .openapi({ param: { name: "id", in: "path" }, description: "Smart Router's transaction id.", example: "tr_2aB3cD4eF5gH6iJ7" }),
});

const amount = z.string().openapi({ description: "Decimal string in major units, exactly as Smart Router sent it.", example: "10.50" });
const timestamp = z.string().openapi({ format: "date-time" });

export const transactionSchema = z
  .object({
    id: z.string().openapi({ example: "tr_2aB3cD4eF5gH6iJ7" }),
    status: z.string().openapi({
      description: `Smart Router's status: one of ${TRANSACTION_STATUSES.join(", ")} (values Smart Router adds later pass through).`,
      example: "completed",
    }),
    amount,
    currency: z.string().openapi({ example: "EUR" }),
    authorized_amount: amount,
    captured_amount: amount,
    refunded_amount: amount,
    available_amount: amount,
    payment_type: z.string().nullable(),
    gateway_name: z.string().nullable(),
    invoice_id: z.string().nullable(),
    name: z.string().nullable(),
    metadata: z.record(z.string(), z.string()),
    sandbox: z.boolean(),
    created_at: z.string().openapi({ description: "When Smart Router created the transaction." }),
    updated_at: timestamp.openapi({ description: "When this service's record of the transaction last changed." }),
    last_event: z
      .object({ id: z.string(), name: z.string().nullable(), fired_at: z.string().nullable() })
      .nullable()
      .openapi({ description: "The Smart Router event whose snapshot the record reflects; null when it came from a batch sync." }),
    fulfillment: z.object({
      status: z.string().openapi({
        description:
          `One of ${[...FULFILLMENT_STATUSES, "awaiting_capture"].join(", ")}. \`not_configured\`: the merchant has no fulfillment URL; ` +
          "`backfilled`: captured before the fulfillment URL was set and imported by a batch, so never notified; " +
          "`awaiting_capture`: nothing to deliver until the payment is captured.",
        example: "delivered",
      }),
      requested_at: timestamp.nullable(),
      delivered_at: timestamp.nullable(),
    }),
  })
  .openapi("Transaction");

export const transactionResponse = z.object({ transaction: transactionSchema }).openapi("TransactionResponse");

export const transactionPageResponse = z
  .object({
    transactions: z.array(transactionSchema).openapi({ description: "Most recently updated first; ties broken by id, descending." }),
    next_cursor: z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last page." }),
  })
  .openapi("TransactionPage");

export const operationSchema = z
  .object({
    id: z.string(),
    type: z.string().openapi({ example: "capture" }),
    amount,
    currency: z.string().nullable(),
    is_attempt: z.boolean(),
    has_failed: z.boolean().nullable(),
    is_accountable: z.boolean().nullable(),
    gateway_operation_id: z.string().nullable(),
    error_code: z.string().nullable(),
    error_message: z.string().nullable(),
    payment_type: z.string().nullable(),
    metadata: z.record(z.string(), z.string()).nullable(),
    created_at: z.string(),
  })
  .openapi("Operation");

export const operationsResponse = z
  .object({
    transaction_id: z.string(),
    operations: z.array(operationSchema).openapi({ description: "Oldest first (by created_at, then id)." }),
  })
  .openapi("OperationHistory");

export const eventSchema = z
  .object({
    id: z.string().openapi({ example: "ev_2aB3cD4eF5gH6iJ7" }),
    name: z.string().nullable().openapi({ example: "transaction.captured" }),
    fired_at: z.string().nullable(),
    outcome: z.enum(["applied", "stale"]).openapi({
      description: "`applied`: its snapshot changed the record; `stale`: verified, but the record already held a newer snapshot.",
    }),
    deliveries: z.int().openapi({ description: "How many times Smart Router delivered the webhook." }),
    first_received_at: timestamp,
    processed_at: timestamp.nullable(),
  })
  .openapi("Event");

export const eventsResponse = z
  .object({
    transaction_id: z.string(),
    events: z.array(eventSchema).openapi({ description: "Oldest first (by fired_at, then id)." }),
  })
  .openapi("EventHistory");

export const errorResponse = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]),
      message: z.string(),
      request_id: z.string(),
    }),
  })
  .openapi("Error");

/** Describes failed query validation in one line, each message naming its parameter. */
export function describeQueryIssues(error: z.core.$ZodError): string {
  return error.issues
    .slice(0, 10)
    .map((issue) => {
      const name = issue.path.join(".");
      return name === "" || issue.message.startsWith(name) ? issue.message : `${name}: ${issue.message}`;
    })
    .join("; ");
}
