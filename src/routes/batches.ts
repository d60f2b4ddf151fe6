import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { cancelBatch, createBatch, findBatch, listBatches, MAX_OPEN_BATCHES, MAX_SYNC_RANGE_DAYS } from "../batches/batches";
import { BATCH_KINDS, BATCH_STATUSES } from "../db/schema";
import { jsonBody } from "../http/body";
import { type MerchantContext, requireMerchantKey } from "../http/merchant-auth";
import { errors, json, security } from "../http/openapi";
import { limitPerApiKey } from "../http/status-rate-limit";
import { DEFAULT_PAGE_SIZE, errorResponse, noQuery, pageQuery } from "../transactions/api-schemas";

const DAY_MS = 86_400_000;
const isoDate = z.iso.datetime({ offset: true });
const rangeNote = `The range is at most ${MAX_SYNC_RANGE_DAYS} days: sync a longer period month by month.`;

/** Body of `POST /v1/batches`. */
const createBatchSchema = z
  .discriminatedUnion("kind", [
    z
      .strictObject({
        kind: z.literal("sync"),
        created_after: isoDate.openapi({ description: `Transactions Smart Router created at or after this instant. ${rangeNote}` }),
        created_before: isoDate.openapi({
          description: `Transactions created strictly before this instant, at most ${MAX_SYNC_RANGE_DAYS} days after created_after.`,
        }),
      })
      .refine((b) => Date.parse(b.created_after) < Date.parse(b.created_before), "created_after must be before created_before")
      .refine((b) => Date.parse(b.created_before) - Date.parse(b.created_after) <= MAX_SYNC_RANGE_DAYS * DAY_MS, {
        message: `created_before may be at most ${MAX_SYNC_RANGE_DAYS} days after created_after; sync a longer period range by range`,
        path: ["created_before"],
      }),
    z.strictObject({
      kind: z.literal("refresh"),
      transaction_ids: z
        .array(z.string().regex(/^tr_[A-Za-z0-9]{1,64}$/, "must be a Smart Router transaction id (tr_…)"))
        .min(1)
        .max(1000),
    }),
  ])
  .openapi("CreateBatch", {
    description:
      `\`sync\` pulls every Smart Router transaction created in [created_after, created_before), at most ${MAX_SYNC_RANGE_DAYS} days; ` +
      "`refresh` re-reads the given ids.",
  });

/** A batch as the API answers it. */
const batchSchema = z
  .object({
    id: z.string(),
    kind: z.enum(BATCH_KINDS),
    status: z.enum(BATCH_STATUSES),
    total: z.int(),
    done: z.int(),
    failed: z.int(),
    api_calls: z.int().openapi({ description: "Smart Router API calls made for this batch so far." }),
    created_at: z.string(),
    started_at: z.string().nullable(),
    finished_at: z.string().nullable(),
    error: z.string().optional(),
  })
  .openapi("Batch");

const batchResponse = z.object({ batch: batchSchema }).openapi("BatchResponse");
/** `GET /v1/batches`. */
export const batchPageResponse = z
  .object({
    batches: z.array(batchSchema).openapi({ description: "Newest first (by created_at, then id)." }),
    next_cursor: z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last page." }),
  })
  .openapi("BatchPage");
const batchIdParams = z.object({
  id: z
    .string()
    .regex(/^bat_[0-9a-f]{32}$/)
    .openapi({ param: { name: "id", in: "path" } }),
});
const notFound = { 404: json(errorResponse, "`not_found`: no such batch for this merchant.") };

/** A refresh of 1,000 ids of the longest shape (`"tr_` + 64 characters + `",`) is about 70 KB. */
const MAX_BATCH_BODY_BYTES = 96 * 1024;

const createBatchRoute = createRoute({
  method: "post",
  path: "/",
  summary: "Start a batch operation",
  description:
    "Runs in the batch lane: it starts slowly, takes at most its share of the Smart Router rate limit, and never delays webhooks. " +
    `A merchant has at most ${MAX_OPEN_BATCHES} batches open (queued or running) at once.`,
  tags: ["Batches"],
  security,
  // Read at most MAX_BATCH_BODY_BYTES before the validator parses it.
  middleware: jsonBody(MAX_BATCH_BODY_BYTES),
  request: { query: noQuery, body: { required: true, content: { "application/json": { schema: createBatchSchema } } } },
  responses: {
    202: json(batchResponse, "The batch, queued."),
    ...errors,
    400: json(errorResponse, "`invalid_body`: the body is not a valid batch request; `invalid_query`: this endpoint takes no query."),
    409: json(
      errorResponse,
      `\`conflict\`: ${MAX_OPEN_BATCHES} batches are already open; the message names them (cancel one or wait for one to finish).`,
    ),
    413: json(errorResponse, `\`payload_too_large\`: the body is over ${MAX_BATCH_BODY_BYTES} bytes.`),
    503: json(errorResponse, "`service_unavailable`: the work could not be queued; retry later."),
  },
});

const listBatchesRoute = createRoute({
  method: "get",
  path: "/",
  summary: "List batches",
  description: "The merchant's batch operations with their progress, newest first, in keyset pages.",
  tags: ["Batches"],
  security,
  request: { query: pageQuery },
  responses: { 200: json(batchPageResponse, "One page of batches."), ...errors },
});

const getBatchRoute = createRoute({
  method: "get",
  path: "/{id}",
  summary: "Get a batch's progress",
  tags: ["Batches"],
  security,
  request: { params: batchIdParams, query: noQuery },
  responses: { 200: json(batchResponse, "The batch."), ...errors, ...notFound },
});

const cancelBatchRoute = createRoute({
  method: "delete",
  path: "/{id}",
  summary: "Cancel a batch",
  tags: ["Batches"],
  security,
  request: { params: batchIdParams, query: noQuery },
  responses: {
    200: json(batchResponse, "The batch, cancelled; queued work for it is dropped."),
    409: json(errorResponse, "`conflict`: the batch has already finished."),
    ...errors,
    ...notFound,
  },
});

/** `/v1/batches`: the merchant's batch operations. */
export const batchRoutes = new OpenAPIHono<MerchantContext>();

batchRoutes.use(requireMerchantKey(), limitPerApiKey());

batchRoutes
  .openapi(createBatchRoute, async (c) => {
    const batch = await createBatch({ db: c.var.db, queue: c.env.BATCHES, merchantId: c.var.merchant.id, input: c.req.valid("json") });
    return c.json({ batch }, 202);
  })
  .openapi(listBatchesRoute, async (c) => {
    const { cursor, limit = DEFAULT_PAGE_SIZE } = c.req.valid("query");
    return c.json(await listBatches({ db: c.var.db, merchantId: c.var.merchant.id, cursor, limit }), 200);
  })
  .openapi(getBatchRoute, async (c) => {
    const batch = await findBatch({ db: c.var.db, merchantId: c.var.merchant.id, batchId: c.req.valid("param").id });
    return c.json({ batch }, 200);
  })
  .openapi(cancelBatchRoute, async (c) => {
    const batch = await cancelBatch({ db: c.var.db, merchantId: c.var.merchant.id, batchId: c.req.valid("param").id });
    return c.json({ batch }, 200);
  });
