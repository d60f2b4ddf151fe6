import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { zValidator } from "@hono/zod-validator";
import type { Context } from "hono";
import {
  auditPageResponse,
  createdMerchantResponse,
  deadLetterPageResponse,
  issuedApiKeyResponse,
  merchantPageResponse,
  merchantResponse,
  moveResponse,
  reconciliationRunPageResponse,
  redriveResponse,
  resealJobResponse,
  revokedApiKeyResponse,
  rotatedAlertSecretResponse,
  rotatedSigningSecretResponse,
  rotatedWebhookCredentialResponse,
  shardStatusResponse,
  startMoveSchema,
  updatedMerchantResponse,
} from "../admin/api-schemas";
import { findReseal, secretsUnderOldKeys, startReseal } from "../admin/reseal";
import { listAdminAlerts } from "../alerts/admin-alerts";
import { alertPageResponse, listAlertsQuery } from "../alerts/api-schemas";
import { auditTarget } from "../audit/audit";
import { shardStatuses } from "../db/shard-status";
import { databaseFor, shardDatabases, shardFor } from "../db/shards";
import { listArchivedDeadLetters } from "../dead-letters/archived";
import { listDeadLetters, redriveFromShards } from "../dead-letters/redrive";
import { type AdminContext, noteAdminAction, requireAdmin } from "../http/admin-auth";
import { jsonBody } from "../http/body";
import { json } from "../http/openapi";
import { validationHook } from "../http/validation";
import { rotateAlertSigningSecret } from "../merchants/alert-secret";
import {
  type CredentialProbe,
  findMerchant,
  issueApiKey,
  listMerchants,
  presentMerchant,
  registerMerchant,
  revokeApiKey,
  updateMerchant,
} from "../merchants/merchants";
import { createMerchantSchema, merchantIdSchema, updateMerchantSchema } from "../merchants/schemas";
import { rotateSigningSecret } from "../merchants/signing-secret";
import { rotateWebhookCredential, rotateWebhookCredentialSchema } from "../merchants/webhook-credential";
import { findMove, startMove } from "../moves/moves";
import { listReconciliationRuns } from "../reconciliation/reconciliation";
import { listAdminAudit } from "../retention/audit-archive";
import { probeCredentials } from "../smart-router/probe";
import { DEFAULT_PAGE_SIZE, errorResponse, pageQuery, strictQuery } from "../transactions/api-schemas";

/** Name of the admin bearer security scheme in the OpenAPI document. */
export const ADMIN_TOKEN_SCHEME = "adminToken";
const security = [{ [ADMIN_TOKEN_SCHEME]: [] }];
const tags = ["Admin"];

const MAX_ADMIN_BODY_BYTES = 16 * 1024;

const redriveSchema = z.union([
  z.strictObject({ ids: z.array(z.string().min(1).max(200)).min(1).max(100) }),
  z.strictObject({ merchant: merchantIdSchema }),
]);
const merchantParams = z.object({ id: merchantIdSchema });
const apiKeyParams = z.object({ id: merchantIdSchema, keyId: z.string().regex(/^[0-9a-f]{16}$/) });
const resealParams = z.object({ jobId: z.string() });
const cursor = z.string().min(1).max(512).optional();
const cursorQuery = strictQuery({ cursor });
const deadLettersQuery = strictQuery({
  merchant: merchantIdSchema.optional(),
  cursor,
  archived: z
    .enum(["true", "false"])
    .optional()
    .openapi({ description: "`true`: the letters archived to R2 past RETENTION_DAYS (redriven or not), one archive object per page." }),
});

const errors = {
  400: json(errorResponse, "`invalid_body`, `invalid_query` or `invalid_cursor`, naming the problem."),
  401: json(errorResponse, "`unauthorized`: missing or invalid admin token."),
};
const notFound = { 404: json(errorResponse, "`not_found`: no such merchant (or a malformed id).") };
const conflict = { 409: json(errorResponse, "`conflict`: the id or the Smart Router project is taken, or a concurrent change won.") };
const tooLarge = { 413: json(errorResponse, "`payload_too_large`: the body passes 16 KiB.") };
const refused = { 422: json(errorResponse, "`credentials_refused`: Smart Router refuses the credentials.") };
const body = <S extends z.ZodType>(schema: S, required = true) => ({ required, content: { "application/json": { schema } } });

/**
 * A JSON body of at most MAX_ADMIN_BODY_BYTES (`optional`: none stands for `{}`). A route's middleware runs before the
 * validators createRoute adds, so a route with a merchant id checks the id first: a bad one is a 404 before any body is read.
 */
const bodyOf = ({ withMerchantId = false, optional = false } = {}) => [
  ...(withMerchantId ? [zValidator("param", merchantParams, validationHook)] : []),
  jsonBody(MAX_ADMIN_BODY_BYTES, { optional }),
];

const createMerchantRoute = createRoute({
  method: "post",
  path: "/merchants",
  summary: "Register a merchant",
  description: "The API key, the webhook password and the fulfilment signing secret are shown here, once.",
  tags,
  security,
  middleware: bodyOf(),
  request: { body: body(createMerchantSchema) },
  responses: {
    201: json(createdMerchantResponse, "The merchant and its credentials."),
    ...errors,
    ...conflict,
    ...tooLarge,
    ...refused,
  },
});

const listMerchantsRoute = createRoute({
  method: "get",
  path: "/merchants",
  summary: "List merchants",
  tags,
  security,
  request: { query: pageQuery },
  responses: { 200: json(merchantPageResponse, "One page of merchants, by id."), ...errors },
});

const getMerchantRoute = createRoute({
  method: "get",
  path: "/merchants/{id}",
  summary: "Get a merchant",
  tags,
  security,
  request: { params: merchantParams },
  responses: { 200: json(merchantResponse, "The merchant, without secrets."), ...errors, ...notFound },
});

const updateMerchantRoute = createRoute({
  method: "patch",
  path: "/merchants/{id}",
  summary: "Change a merchant",
  tags,
  security,
  middleware: bodyOf({ withMerchantId: true }),
  request: { params: merchantParams, body: body(updateMerchantSchema) },
  responses: {
    200: json(updatedMerchantResponse, "The merchant as changed (and the alert signing secret when this change issued one)."),
    ...errors,
    ...notFound,
    ...conflict,
    ...tooLarge,
    ...refused,
  },
});

const issueApiKeyRoute = createRoute({
  method: "post",
  path: "/merchants/{id}/api-keys",
  summary: "Issue another API key",
  description: "Existing keys keep working until revoked.",
  tags,
  security,
  request: { params: merchantParams },
  responses: { 201: json(issuedApiKeyResponse, "The new key, shown once."), ...errors, ...notFound },
});

const revokeApiKeyRoute = createRoute({
  method: "delete",
  path: "/merchants/{id}/api-keys/{keyId}",
  summary: "Revoke an API key",
  tags,
  security,
  request: { params: apiKeyParams },
  responses: { 200: json(revokedApiKeyResponse, "The revoked key."), ...errors, ...notFound },
});

const rotateWebhookCredentialRoute = createRoute({
  method: "post",
  path: "/merchants/{id}/webhook-credential",
  summary: "Rotate the webhook password",
  description: "The previous password keeps working until `previous_valid_until`. The body is optional.",
  tags,
  security,
  middleware: bodyOf({ withMerchantId: true, optional: true }),
  request: { params: merchantParams, body: body(rotateWebhookCredentialSchema, false) },
  responses: {
    201: json(rotatedWebhookCredentialResponse, "The new password, shown once."),
    ...errors,
    ...notFound,
    ...conflict,
    ...tooLarge,
  },
});

const rotateSigningSecretRoute = createRoute({
  method: "post",
  path: "/merchants/{id}/fulfillment-secret",
  summary: "Rotate the fulfilment signing secret",
  description: "Notifications carry both signatures until `previous_valid_until`. The body is optional.",
  tags,
  security,
  middleware: bodyOf({ withMerchantId: true, optional: true }),
  request: { params: merchantParams, body: body(rotateWebhookCredentialSchema, false) },
  responses: {
    201: json(rotatedSigningSecretResponse, "The new secret, shown once."),
    ...errors,
    ...notFound,
    ...conflict,
    ...tooLarge,
  },
});

const rotateAlertSecretRoute = createRoute({
  method: "post",
  path: "/merchants/{id}/alert-secret",
  summary: "Rotate the alert signing secret",
  description:
    "Alert notifications are signed with their own secret, never the fulfilment one. Notifications carry both signatures until " +
    "`previous_valid_until`. Issues the first one for a merchant whose alert URL predates it. The body is optional.",
  tags,
  security,
  middleware: bodyOf({ withMerchantId: true, optional: true }),
  request: { params: merchantParams, body: body(rotateWebhookCredentialSchema, false) },
  responses: {
    201: json(rotatedAlertSecretResponse, "The new secret, shown once."),
    ...errors,
    ...notFound,
    409: json(errorResponse, "`conflict`: the merchant has no alert URL, or a concurrent change won."),
    ...tooLarge,
  },
});

const startResealRoute = createRoute({
  method: "post",
  path: "/reseal",
  summary: "Re-seal every secret under the current SECRETS_KEY",
  tags,
  security,
  responses: { 202: json(resealJobResponse, "The job, started."), ...errors },
});

const findResealRoute = createRoute({
  method: "get",
  path: "/reseal/{jobId}",
  summary: "Get a re-seal job",
  tags,
  security,
  request: { params: resealParams },
  responses: { 200: json(resealJobResponse, "The job."), ...errors, 404: json(errorResponse, "`not_found`: no such job.") },
});

const startMoveRoute = createRoute({
  method: "post",
  path: "/merchants/{id}/move",
  summary: "Move a merchant to another shard, online",
  tags,
  security,
  middleware: bodyOf({ withMerchantId: true }),
  request: { params: merchantParams, body: body(startMoveSchema) },
  responses: {
    202: json(moveResponse, "The move, started: copying in the batch lane."),
    ...errors,
    ...notFound,
    409: json(errorResponse, "`conflict`: the merchant is on that shard already, is moving, or the shard is past 80% of its capacity."),
    ...tooLarge,
    503: json(errorResponse, "`service_unavailable`: the target shard does not answer or is not migrated."),
  },
});

const findMoveRoute = createRoute({
  method: "get",
  path: "/moves/{moveId}",
  summary: "Get a merchant's move",
  tags,
  security,
  request: { params: z.object({ moveId: z.string().max(100) }) },
  responses: { 200: json(moveResponse, "The move."), ...errors, 404: json(errorResponse, "`not_found`: no such move.") },
});

const reconciliationRunsRoute = createRoute({
  method: "get",
  path: "/reconciliation/runs",
  summary: "List reconciliation runs",
  tags,
  security,
  request: { query: cursorQuery },
  responses: { 200: json(reconciliationRunPageResponse, "One page of runs, newest first."), ...errors },
});

const auditRoute = createRoute({
  method: "get",
  path: "/audit",
  summary: "List the admin audit",
  description:
    "Every admin action, newest first; never a secret. Entries past a year are read back from R2 once D1's run out; such a " +
    "page may hold fewer entries than the page size and still have a `next_cursor`.",
  tags,
  security,
  request: { query: cursorQuery },
  responses: { 200: json(auditPageResponse, "One page of entries."), ...errors },
});

const deadLettersRoute = createRoute({
  method: "get",
  path: "/dead-letters",
  summary: "List dead letters",
  description:
    "Messages that failed for good and are not redriven yet, newest first, with their error. With `archived=true`: those " +
    "archived to R2 past RETENTION_DAYS, redriven or not (`redriven_at`), one archive object per page, newest first.",
  tags,
  security,
  request: { query: deadLettersQuery },
  responses: { 200: json(deadLetterPageResponse, "One page of dead letters."), ...errors, ...notFound },
});

const redriveRoute = createRoute({
  method: "post",
  path: "/dead-letters/redrive",
  summary: "Redrive dead letters",
  description: "Sends the given letters, or a merchant's, through the pipeline again.",
  tags,
  security,
  middleware: bodyOf(),
  request: { body: body(redriveSchema) },
  responses: {
    200: json(redriveResponse, "The letters sent again, and those skipped."),
    ...errors,
    ...notFound,
    ...tooLarge,
    503: json(errorResponse, "`service_unavailable`: a queue refused a letter; nothing after it was sent."),
  },
});

const shardsRoute = createRoute({
  method: "get",
  path: "/shards",
  summary: "List the D1 shards",
  description:
    "Every bound shard in order: its merchants, its size against its capacity (`SHARD_CAPACITY_BYTES`, D1's 10 GB by " +
    "default), its last applied migration, and days to full at the last 7 days' growth. A shard " +
    "that fails a read (unreachable, unmigrated) is `ok: false` with an `error`; the others still answer.",
  tags,
  security,
  responses: { 200: json(shardStatusResponse, "Every shard, in binding order."), ...errors },
});

const alertsRoute = createRoute({
  method: "get",
  path: "/alerts",
  summary: "List admin alerts",
  description:
    "The operator's own alerts, in the shape of `GET /v1/alerts` (`transaction_id` null): `shard_capacity` when a D1 shard " +
    "passes 80, 90 or 95 % of its capacity (one alert per threshold, raised by the cron every 5 minutes), resolved when it " +
    "drops back. A shard past 80 % takes no new merchant.",
  tags,
  security,
  request: { query: listAlertsQuery },
  responses: { 200: json(alertPageResponse, "One page of alerts."), ...errors },
});

/** The one call registration and credential changes make to Smart Router, with the request's bindings. */
const probeWith =
  (c: Context<AdminContext>): CredentialProbe =>
  (credentials) =>
    probeCredentials(c.env, c.var.config, credentials);

/** `/admin`: merchants and their credentials, operations, the audit. Every change is audited by `requireAdmin()`. */
export const adminRoutes = new OpenAPIHono<AdminContext>({ defaultHook: validationHook });

adminRoutes.openAPIRegistry.registerComponent("securitySchemes", ADMIN_TOKEN_SCHEME, {
  type: "http",
  scheme: "bearer",
  description: "The operator's ADMIN_TOKEN (or ADMIN_TOKEN_PREVIOUS while the token rotates).",
});

adminRoutes.use(requireAdmin());

adminRoutes
  .openapi(createMerchantRoute, async (c) => {
    const input = c.req.valid("json");
    const created = await registerMerchant({ env: c.env, config: c.var.config, input, probe: probeWith(c) });
    noteAdminAction(c, "merchant.create", [auditTarget.merchant(input.id)]);
    c.header("Cache-Control", "no-store");
    return c.json(created, 201);
  })
  .openapi(listMerchantsRoute, async (c) => {
    const { cursor, limit = DEFAULT_PAGE_SIZE } = c.req.valid("query");
    return c.json(await listMerchants({ env: c.env, cursor, limit }), 200);
  })
  .openapi(getMerchantRoute, async (c) => {
    const merchantId = c.req.valid("param").id;
    const shard = await shardFor(c.env, merchantId);
    const row = await findMerchant({ db: shard.db, merchantId });
    return c.json({ merchant: presentMerchant(row, shard.index) }, 200);
  })
  .openapi(updateMerchantRoute, async (c) => {
    const merchantId = c.req.valid("param").id;
    const shard = await shardFor(c.env, merchantId);
    const updated = await updateMerchant({
      db: shard.db,
      shard: shard.index,
      directory: c.var.directoryDb,
      config: c.var.config,
      merchantId,
      input: c.req.valid("json"),
      probe: probeWith(c),
    });
    noteAdminAction(c, "merchant.update", [auditTarget.merchant(merchantId)]);
    if (updated.alert_signing_secret) c.header("Cache-Control", "no-store");
    return c.json(updated, 200);
  })
  .openapi(issueApiKeyRoute, async (c) => {
    const merchantId = c.req.valid("param").id;
    const shard = await shardFor(c.env, merchantId);
    const created = await issueApiKey({ db: shard.db, directory: c.var.directoryDb, merchantId, shard: shard.index });
    noteAdminAction(c, "api_key.create", [auditTarget.apiKey(merchantId, created.api_key.id)]);
    c.header("Cache-Control", "no-store");
    return c.json(created, 201);
  })
  .openapi(revokeApiKeyRoute, async (c) => {
    const { id: merchantId, keyId } = c.req.valid("param");
    const revoked = await revokeApiKey({ db: await databaseFor(c.env, merchantId), merchantId, keyId });
    noteAdminAction(c, "api_key.revoke", [auditTarget.apiKey(merchantId, keyId)]);
    return c.json(revoked, 200);
  })
  .openapi(rotateWebhookCredentialRoute, async (c) => {
    const merchantId = c.req.valid("param").id;
    const shard = await shardFor(c.env, merchantId);
    const rotated = await rotateWebhookCredential({ db: shard.db, shard: shard.index, merchantId, input: c.req.valid("json") });
    noteAdminAction(c, "webhook_credential.rotate", [auditTarget.merchant(merchantId)]);
    c.header("Cache-Control", "no-store");
    return c.json(rotated, 201);
  })
  .openapi(rotateSigningSecretRoute, async (c) => {
    const merchantId = c.req.valid("param").id;
    const db = await databaseFor(c.env, merchantId);
    const overlapHours = c.req.valid("json").overlap_hours;
    const rotated = await rotateSigningSecret({ db, config: c.var.config, merchantId, overlapHours });
    noteAdminAction(c, "signing_secret.rotate", [auditTarget.merchant(merchantId)]);
    c.header("Cache-Control", "no-store");
    return c.json(rotated, 201);
  })
  .openapi(rotateAlertSecretRoute, async (c) => {
    const merchantId = c.req.valid("param").id;
    const db = await databaseFor(c.env, merchantId);
    const overlapHours = c.req.valid("json").overlap_hours;
    const rotated = await rotateAlertSigningSecret({ db, config: c.var.config, merchantId, overlapHours });
    noteAdminAction(c, "alert_secret.rotate", [auditTarget.merchant(merchantId)]);
    c.header("Cache-Control", "no-store");
    return c.json(rotated, 201);
  })
  .openapi(startResealRoute, async (c) => {
    const job = await startReseal({ env: c.env, queue: c.env.BATCHES });
    noteAdminAction(c, "secrets.reseal", [auditTarget.reseal(job.id)]);
    return c.json({ job: { ...job, secrets_under_old_keys: await secretsUnderOldKeys({ env: c.env, config: c.var.config }) } }, 202);
  })
  .openapi(findResealRoute, async (c) => {
    const job = await findReseal({ env: c.env, jobId: c.req.valid("param").jobId });
    return c.json({ job: { ...job, secrets_under_old_keys: await secretsUnderOldKeys({ env: c.env, config: c.var.config }) } }, 200);
  })
  .openapi(startMoveRoute, async (c) => {
    const merchantId = c.req.valid("param").id;
    const move = await startMove({ env: c.env, config: c.var.config, queue: c.env.BATCHES, merchantId, to: c.req.valid("json").to });
    noteAdminAction(c, "merchant.move", [auditTarget.merchant(merchantId)]);
    return c.json({ move }, 202);
  })
  .openapi(findMoveRoute, async (c) => c.json({ move: await findMove({ env: c.env, moveId: c.req.valid("param").moveId }) }, 200))
  .openapi(reconciliationRunsRoute, async (c) =>
    c.json(await listReconciliationRuns({ dbs: shardDatabases(c.env), cursor: c.req.valid("query").cursor }), 200),
  )
  .openapi(shardsRoute, async (c) =>
    c.json({ shards: await shardStatuses({ env: c.env, capacityBytes: c.var.config.SHARD_CAPACITY_BYTES, now: Date.now() }) }, 200),
  )
  .openapi(alertsRoute, async (c) => {
    const { limit = DEFAULT_PAGE_SIZE, ...query } = c.req.valid("query");
    return c.json(await listAdminAlerts({ db: c.var.directoryDb, query: { ...query, limit } }), 200);
  })
  .openapi(auditRoute, async (c) =>
    c.json(await listAdminAudit({ db: c.var.directoryDb, bucket: c.env.ARCHIVE, cursor: c.req.valid("query").cursor }), 200),
  )
  .openapi(deadLettersRoute, async (c) => {
    const { merchant, cursor, archived } = c.req.valid("query");
    if (archived === "true")
      return c.json(await listArchivedDeadLetters({ env: c.env, bucket: c.env.ARCHIVE, merchantId: merchant, cursor }), 200);
    return c.json(await listDeadLetters({ env: c.env, merchantId: merchant, cursor }), 200);
  })
  .openapi(redriveRoute, async (c) => {
    const result = await redriveFromShards({ env: c.env, selection: c.req.valid("json") });
    // One entry per letter sent again: the audit says which letters this request redrove.
    noteAdminAction(c, "dead_letter.redrive", result.redriven.map(auditTarget.deadLetter));
    return c.json(result, 200);
  });
