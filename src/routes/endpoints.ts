import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { ENDPOINT_STATUSES, MESSAGE_STATUSES, REPLAY_STATUSES } from "../db/schema";
import {
  createEndpoint,
  deleteEndpoint,
  findEndpointRow,
  listEndpoints,
  MAX_ENDPOINTS,
  presentEndpoint,
  rotateEndpointSecret,
  updateEndpoint,
} from "../endpoints/endpoints";
import { listMessages } from "../endpoints/messages";
import { cancelReplay, createReplay, findReplay, presentReplay } from "../endpoints/replay";
import { nudgeEndpointLanes } from "../endpoints/sweep";
import { jsonBody } from "../http/body";
import { type MerchantContext, requireMerchantKey } from "../http/merchant-auth";
import { errors, json, security } from "../http/openapi";
import { limitPerApiKey } from "../http/status-rate-limit";
import { fulfillmentUrlSchema } from "../merchants/schemas";
import { DEFAULT_PAGE_SIZE, errorResponse, listTransactionsQuery, noQuery, pageQuery, strictQuery } from "../transactions/api-schemas";

const tags = ["Endpoints"];
const MAX_BODY_BYTES = 16 * 1024;
const isoDate = z.iso.datetime({ offset: true });

/** A message type (`transaction.<status>`, `transaction.captured`), or in `events` one of the wildcards `*`, `transaction.*`. */
const messageType = z.string().regex(/^transaction\.[a-z][a-z-]{0,62}$/, "must be a message type such as transaction.completed");
const eventEntry = z.union([z.literal("*"), z.literal("transaction.*"), messageType]);
const events = z
  .array(eventEntry)
  .min(1)
  .max(50)
  .openapi({
    description: "Message types to receive, matched exactly; `*` and `transaction.*` take all.",
    example: ["transaction.captured"],
  });
const description = z.string().max(500);

const createEndpointSchema = z
  .strictObject({ url: fulfillmentUrlSchema, events, description: description.optional() })
  .openapi("CreateEndpoint", { description: "`url` follows the rules of `fulfillment_url`." });
const updateEndpointSchema = z
  .strictObject({
    url: fulfillmentUrlSchema.optional(),
    events: events.optional(),
    description: description.optional(),
    status: z.enum(["enabled", "paused"]).optional(),
  })
  .refine((body) => Object.keys(body).length > 0, "name at least one of url, events, description, status")
  .openapi("UpdateEndpoint");
const rotateSecretSchema = z.strictObject({ overlap_hours: z.int().min(0).max(168).optional() }).openapi("RotateEndpointSecret");
const replaySchema = z
  .strictObject({
    since: isoDate,
    until: isoDate,
    types: z.array(messageType).min(1).max(50).optional(),
    dry_run: z.boolean().optional().openapi({ description: "Count the messages only; nothing is sent. Default false." }),
  })
  .refine((body) => Date.parse(body.since) < Date.parse(body.until), { message: "since must be before until", path: ["until"] })
  .openapi("CreateReplay");

const endpointSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(z.string()),
    description: z.string(),
    status: z.enum(ENDPOINT_STATUSES),
    created_at: z.string(),
  })
  .openapi("Endpoint");
const endpointResponse = z.object({ endpoint: endpointSchema }).openapi("EndpointResponse");
const createdResponse = z
  .object({ endpoint: endpointSchema, signing_secret: z.string().openapi({ description: "`whsec_…`, shown once." }) })
  .openapi("CreatedEndpoint");
const endpointPage = z.object({ endpoints: z.array(endpointSchema), next_cursor: z.string().nullable() }).openapi("EndpointPage");
const secretResponse = z
  .object({ signing_secret: z.string(), previous_valid_until: z.string() })
  .openapi("EndpointSecret", { description: "Until `previous_valid_until`, messages carry a `v1,` signature with each secret." });
const replayResponse = z
  .object({
    replay: z.object({
      id: z.string(),
      status: z.enum(REPLAY_STATUSES),
      total: z.int(),
      sent: z.int(),
      failed: z.int(),
      dry_run: z.boolean(),
      error: z.string().optional(),
    }),
  })
  .openapi("ReplayResponse");
const messagePage = z
  .object({
    messages: z.array(
      z.object({
        id: z.string().openapi({ description: "The `webhook-id`, the same on every attempt and on replay." }),
        type: z.string(),
        sequence: z.int(),
        transaction_id: z.string(),
        status: z.enum(MESSAGE_STATUSES),
        attempts: z.int(),
        last_http_status: z.int().nullable(),
        created_at: z.string(),
        delivered_at: z.string().nullable(),
      }),
    ),
    next_cursor: z.string().nullable(),
  })
  .openapi("EndpointMessagePage");

const idParam = z
  .string()
  .regex(/^ep_[0-9a-f]{32}$/)
  .openapi({ param: { name: "id", in: "path" } });
const endpointParams = z.object({ id: idParam });
const replayParams = z.object({
  id: idParam,
  replay_id: z
    .string()
    .regex(/^rpl_[0-9a-f]{32}$/)
    .openapi({ param: { name: "replay_id", in: "path" } }),
});
const messagesQuery = strictQuery({
  transaction_id: z
    .string()
    .regex(/^tr_[A-Za-z0-9]{1,64}$/, "transaction_id must be a Smart Router transaction id (tr_…)")
    .optional(),
  status: z.enum(MESSAGE_STATUSES, { error: `status must be one of: ${MESSAGE_STATUSES.join(", ")}` }).optional(),
  limit: listTransactionsQuery.shape.limit,
  cursor: listTransactionsQuery.shape.cursor,
});
const notFound = { 404: json(errorResponse, "`not_found`: no such endpoint (or replay) for this merchant.") };
const withBody = <S>(schema: S) => ({ body: { required: true, content: { "application/json": { schema } } } });
const bodyErrors = {
  400: json(errorResponse, "`invalid_body`: the body does not fit the schema; `invalid_query`: this route takes no query."),
  413: json(errorResponse, `\`payload_too_large\`: the body is over ${MAX_BODY_BYTES} bytes.`),
};

const route = <R extends Parameters<typeof createRoute>[0]>(config: R) => createRoute({ tags, security, ...config });

const createEndpointRoute = route({
  method: "post",
  path: "/",
  summary: "Create an endpoint",
  description: `Every applied status change is pushed to it, in order per transaction. At most ${MAX_ENDPOINTS} per merchant.`,
  middleware: jsonBody(MAX_BODY_BYTES),
  request: { query: noQuery, ...withBody(createEndpointSchema) },
  responses: {
    201: json(createdResponse, "The endpoint, and its signing secret (shown once)."),
    ...errors,
    ...bodyErrors,
    409: json(errorResponse, `\`conflict\`: the merchant has ${MAX_ENDPOINTS} endpoints already.`),
  },
});
const listEndpointsRoute = route({
  method: "get",
  path: "/",
  summary: "List endpoints",
  request: { query: pageQuery },
  responses: { 200: json(endpointPage, "Newest first."), ...errors },
});
const getEndpointRoute = route({
  method: "get",
  path: "/{id}",
  summary: "Get an endpoint",
  request: { params: endpointParams, query: noQuery },
  responses: { 200: json(endpointResponse, "The endpoint."), ...errors, ...notFound },
});
const updateEndpointRoute = route({
  method: "patch",
  path: "/{id}",
  summary: "Update an endpoint",
  description: "`paused` keeps messages; `enabled` sends them, in order (also after the service disabled the endpoint).",
  middleware: jsonBody(MAX_BODY_BYTES),
  request: { params: endpointParams, query: noQuery, ...withBody(updateEndpointSchema) },
  responses: {
    200: json(endpointResponse, "The endpoint."),
    ...errors,
    ...bodyErrors,
    ...notFound,
    409: json(errorResponse, "`conflict`: changed concurrently."),
  },
});
const deleteEndpointRoute = route({
  method: "delete",
  path: "/{id}",
  summary: "Delete an endpoint",
  request: { params: endpointParams, query: noQuery },
  responses: {
    200: json(z.object({ id: z.string(), deleted: z.literal(true) }).openapi("DeletedEndpoint"), "Deleted, with its messages."),
    ...errors,
    ...notFound,
  },
});
const rotateSecretRoute = route({
  method: "post",
  path: "/{id}/secret",
  summary: "Rotate an endpoint's signing secret",
  middleware: jsonBody(MAX_BODY_BYTES),
  request: {
    params: endpointParams,
    query: noQuery,
    body: { required: false, content: { "application/json": { schema: rotateSecretSchema } } },
  },
  responses: { 200: json(secretResponse, "The new secret, shown once."), ...errors, ...bodyErrors, ...notFound },
});
const createReplayRoute = route({
  method: "post",
  path: "/{id}/replay",
  summary: "Replay an endpoint's messages",
  description: "Resends the messages created in [since, until), same `webhook-id`s, in order per transaction; no Smart Router call.",
  middleware: jsonBody(MAX_BODY_BYTES),
  request: { params: endpointParams, query: noQuery, ...withBody(replaySchema) },
  responses: {
    202: json(replayResponse, "The replay (a dry run: completed, with its total)."),
    ...errors,
    ...bodyErrors,
    ...notFound,
    409: json(errorResponse, "`conflict`: the endpoint is not enabled."),
    503: json(errorResponse, "`service_unavailable`: the replay could not be queued; retry later."),
  },
});
const getReplayRoute = route({
  method: "get",
  path: "/{id}/replays/{replay_id}",
  summary: "Get a replay's progress",
  request: { params: replayParams, query: noQuery },
  responses: { 200: json(replayResponse, "The replay."), ...errors, ...notFound },
});
const cancelReplayRoute = route({
  method: "delete",
  path: "/{id}/replays/{replay_id}",
  summary: "Cancel a replay",
  request: { params: replayParams, query: noQuery },
  responses: { 200: json(replayResponse, "Cancelled."), ...errors, ...notFound, 409: json(errorResponse, "`conflict`: already finished.") },
});
const listMessagesRoute = route({
  method: "get",
  path: "/{id}/messages",
  summary: "List an endpoint's messages",
  request: { params: endpointParams, query: messagesQuery },
  responses: { 200: json(messagePage, "Newest first."), ...errors, ...notFound },
});

/** `/v1/endpoints`: where the merchant's transactions' changes are pushed. */
export const endpointRoutes = new OpenAPIHono<MerchantContext>();

endpointRoutes.use(requireMerchantKey(), limitPerApiKey());

endpointRoutes
  .openapi(createEndpointRoute, async (c) => {
    const input = c.req.valid("json");
    return c.json(await createEndpoint({ db: c.var.db, config: c.var.config, merchantId: c.var.merchant.id, input }), 201);
  })
  .openapi(listEndpointsRoute, async (c) => {
    const { cursor, limit = DEFAULT_PAGE_SIZE } = c.req.valid("query");
    return c.json(await listEndpoints({ db: c.var.db, merchantId: c.var.merchant.id, cursor, limit }), 200);
  })
  .openapi(getEndpointRoute, async (c) => {
    const row = await findEndpointRow({ db: c.var.db, merchantId: c.var.merchant.id, endpointId: c.req.valid("param").id });
    return c.json({ endpoint: presentEndpoint(row) }, 200);
  })
  .openapi(updateEndpointRoute, async (c) => {
    const endpointId = c.req.valid("param").id;
    const input = c.req.valid("json");
    const updated = await updateEndpoint({ db: c.var.db, config: c.var.config, merchantId: c.var.merchant.id, endpointId, input });
    if (updated.resumed) await nudgeEndpointLanes({ db: c.var.db, queue: c.env.ENDPOINT_MESSAGES, endpointId });
    return c.json({ endpoint: updated.endpoint }, 200);
  })
  .openapi(deleteEndpointRoute, async (c) => {
    const endpointId = c.req.valid("param").id;
    await deleteEndpoint({ db: c.var.db, merchantId: c.var.merchant.id, endpointId });
    return c.json({ id: endpointId, deleted: true as const }, 200);
  })
  .openapi(rotateSecretRoute, async (c) => {
    const body = c.req.valid("json");
    const endpointId = c.req.valid("param").id;
    const overlapHours = body?.overlap_hours;
    return c.json(
      await rotateEndpointSecret({ db: c.var.db, config: c.var.config, merchantId: c.var.merchant.id, endpointId, overlapHours }),
      200,
    );
  })
  .openapi(createReplayRoute, async (c) => {
    const { dry_run = false, ...range } = c.req.valid("json");
    const input = { ...range, dry_run };
    const replay = await createReplay({
      db: c.var.db,
      queue: c.env.BATCHES,
      merchantId: c.var.merchant.id,
      endpointId: c.req.valid("param").id,
      input,
    });
    return c.json({ replay }, 202);
  })
  .openapi(getReplayRoute, async (c) => {
    const { id, replay_id } = c.req.valid("param");
    const row = await findReplay({ db: c.var.db, merchantId: c.var.merchant.id, endpointId: id, replayId: replay_id });
    return c.json({ replay: presentReplay(row) }, 200);
  })
  .openapi(cancelReplayRoute, async (c) => {
    const { id, replay_id } = c.req.valid("param");
    return c.json(
      { replay: await cancelReplay({ db: c.var.db, merchantId: c.var.merchant.id, endpointId: id, replayId: replay_id }) },
      200,
    );
  })
  .openapi(listMessagesRoute, async (c) => {
    const { limit = DEFAULT_PAGE_SIZE, ...query } = c.req.valid("query");
    return c.json(
      await listMessages({ db: c.var.db, merchantId: c.var.merchant.id, endpointId: c.req.valid("param").id, query: { ...query, limit } }),
      200,
    );
  });
