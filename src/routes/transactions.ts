import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { etag } from "hono/etag";
import { merchantCache } from "../http/cache";
import { type MerchantContext, requireMerchantKey } from "../http/merchant-auth";
import { errors, json, security } from "../http/openapi";
import { limitPerApiKey } from "../http/status-rate-limit";
import { timelineResponse } from "../timeline/api-schemas";
import { transactionTimeline } from "../timeline/timeline";
import {
  conditionalHeaders,
  DEFAULT_PAGE_SIZE,
  errorResponse,
  eventsResponse,
  listTransactionsQuery,
  noQuery,
  operationsResponse,
  transactionIdParams,
  transactionPageResponse,
  transactionResponse,
} from "../transactions/api-schemas";
import { findTransaction, listAppliedEvents, listOperations, listTransactions } from "../transactions/queries";

const notFound = {
  404: json(errorResponse, "`not_found`: no such transaction for this merchant (another merchant's transaction included)."),
};

const cacheable = {
  headers: {
    ETag: {
      description: "Pass back in If-None-Match to get a 304 while the representation is unchanged.",
      schema: { type: "string" as const },
    },
  },
};
const notModified = { 304: { description: "Unchanged since the ETag given in If-None-Match." } };

// Records, operations (metadata, gateway references, error texts) and timelines carry the customer's personal and payment
// data: no cache keeps them. The applied events name only ids, event names and times: revalidated, not stored.
const personalData = merchantCache("no-store");
const withoutPersonalData = merchantCache("no-cache");

const getTransaction = createRoute({
  method: "get",
  path: "/{id}",
  summary: "Get one transaction",
  tags: ["Transactions"],
  security,
  middleware: [personalData, etag()],
  request: { params: transactionIdParams, query: noQuery, headers: conditionalHeaders },
  responses: { 200: { ...json(transactionResponse, "The transaction."), ...cacheable }, ...notModified, ...errors, ...notFound },
});

const listTransactionsRoute = createRoute({
  method: "get",
  path: "/",
  summary: "List transactions",
  description:
    "Keyset pagination, most recently updated first (`updated_at` descending, then `id` descending). Rows that arrive or change while " +
    "paging sort before the cursor, so a walk returns each earlier row exactly once; to follow changes, keep the first page's newest " +
    "`updated_at` and pass it as `updated_after` next time.",
  tags: ["Transactions"],
  security,
  middleware: personalData,
  request: { query: listTransactionsQuery },
  responses: { 200: json(transactionPageResponse, "One page of transactions."), ...errors },
});

const listOperationsRoute = createRoute({
  method: "get",
  path: "/{id}/operations",
  summary: "List a transaction's operations",
  description: "Every operation Smart Router reported for the transaction, oldest first.",
  tags: ["Transactions"],
  security,
  middleware: [personalData, etag()],
  request: { params: transactionIdParams, query: noQuery, headers: conditionalHeaders },
  responses: { 200: { ...json(operationsResponse, "The operation history."), ...cacheable }, ...notModified, ...errors, ...notFound },
});

const listEventsRoute = createRoute({
  method: "get",
  path: "/{id}/events",
  summary: "List the events applied to a transaction",
  description:
    "The verified Smart Router events whose snapshot was applied to the record (or found older than it), oldest first by fired_at.",
  tags: ["Transactions"],
  security,
  middleware: [withoutPersonalData, etag()],
  request: { params: transactionIdParams, query: noQuery, headers: conditionalHeaders },
  responses: { 200: { ...json(eventsResponse, "The event history."), ...cacheable }, ...notModified, ...errors, ...notFound },
});

const timelineRoute = createRoute({
  method: "get",
  path: "/{id}/timeline",
  summary: "A transaction's timeline",
  description:
    "Oldest first: every webhook delivery of its events (duplicates marked), each fetch-back with its outcome and any wait at our " +
    "pacer, each status change with the event or API read that caused it, and each fulfilment attempt with the merchant's HTTP " +
    "status or an error class (never a response body).",
  tags: ["Transactions"],
  security,
  middleware: [personalData, etag()],
  request: { params: transactionIdParams, query: noQuery, headers: conditionalHeaders },
  responses: { 200: { ...json(timelineResponse, "The timeline."), ...cacheable }, ...notModified, ...errors, ...notFound },
});

/** `/v1/transactions`: the merchant's own transactions, read-only. */
export const transactionRoutes = new OpenAPIHono<MerchantContext>();

// Each route sets its own cache policy (above), after authentication.
transactionRoutes.use(requireMerchantKey(), limitPerApiKey());

transactionRoutes
  .openapi(getTransaction, async (c) => {
    const transaction = await findTransaction({ db: c.var.db, merchant: c.var.merchant, transactionId: c.req.valid("param").id });
    return c.json({ transaction }, 200);
  })
  .openapi(listTransactionsRoute, async (c) => {
    const { limit = DEFAULT_PAGE_SIZE, ...query } = c.req.valid("query");
    return c.json(await listTransactions({ db: c.var.db, merchant: c.var.merchant, query: { ...query, limit } }), 200);
  })
  .openapi(listOperationsRoute, async (c) => {
    const history = { db: c.var.db, archive: c.env.ARCHIVE, merchant: c.var.merchant, transactionId: c.req.valid("param").id };
    return c.json(await listOperations(history), 200);
  })
  .openapi(listEventsRoute, async (c) => {
    const history = { db: c.var.db, archive: c.env.ARCHIVE, merchant: c.var.merchant, transactionId: c.req.valid("param").id };
    return c.json(await listAppliedEvents(history), 200);
  })
  .openapi(timelineRoute, async (c) => {
    const timeline = { db: c.var.db, archive: c.env.ARCHIVE, merchant: c.var.merchant, transactionId: c.req.valid("param").id };
    return c.json(await transactionTimeline(timeline), 200);
  });
