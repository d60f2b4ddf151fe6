import { zValidator } from "@hono/zod-validator";
import { type Context, Hono } from "hono";
import { z } from "zod";
import { findReseal, secretsUnderOldKeys, startReseal } from "../admin/reseal";
import { auditTarget, listAdminActions, recordAdminAction, recordAdminActions } from "../audit/audit";
import { databaseFor, shardDatabases } from "../db/shards";
import { listDeadLetters, redriveFromShards } from "../dead-letters/redrive";
import { requireAdmin } from "../http/admin-auth";
import { jsonBody } from "../http/body";
import type { AppContext } from "../http/context";
import { validationHook } from "../http/validation";
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
import { listReconciliationRuns } from "../reconciliation/reconciliation";
import { probeCredentials } from "../smart-router/probe";
import { DEFAULT_PAGE_SIZE, pageQuery, strictQuery } from "../transactions/api-schemas";

const redriveSchema = z.union([
  z.strictObject({ ids: z.array(z.string().min(1).max(200)).min(1).max(100) }),
  z.strictObject({ merchant: merchantIdSchema }),
]);

const MAX_ADMIN_BODY_BYTES = 16 * 1024;

const merchantParams = z.object({ id: merchantIdSchema });
const apiKeyParams = z.object({ id: merchantIdSchema, keyId: z.string().regex(/^[0-9a-f]{16}$/) });
const cursor = z.string().min(1).max(512).optional();
const cursorQuery = strictQuery({ cursor });
const deadLettersQuery = strictQuery({ merchant: merchantIdSchema.optional(), cursor });

/** The one call registration and credential changes make to Smart Router, with the request's bindings. */
const probeWith =
  (c: Context<AppContext>): CredentialProbe =>
  (credentials) =>
    probeCredentials(c.env, c.var.config, credentials);

export const adminRoutes = new Hono<AppContext>()
  .use(requireAdmin())
  .post("/merchants", jsonBody(MAX_ADMIN_BODY_BYTES), zValidator("json", createMerchantSchema, validationHook), async (c) => {
    const input = c.req.valid("json");
    const created = await registerMerchant({ env: c.env, config: c.var.config, input, probe: probeWith(c), requestId: c.var.requestId });
    c.header("Cache-Control", "no-store");
    return c.json(created, 201);
  })
  .get("/merchants", zValidator("query", pageQuery, validationHook), async (c) => {
    const { cursor, limit = DEFAULT_PAGE_SIZE } = c.req.valid("query");
    return c.json(await listMerchants(c.env, { cursor, limit }));
  })
  .get("/merchants/:id", zValidator("param", merchantParams, validationHook), async (c) => {
    const merchantId = c.req.valid("param").id;
    const row = await findMerchant(await databaseFor(c.env, merchantId), merchantId);
    return c.json({ merchant: presentMerchant(row) });
  })
  .patch(
    "/merchants/:id",
    zValidator("param", merchantParams, validationHook),
    jsonBody(MAX_ADMIN_BODY_BYTES),
    zValidator("json", updateMerchantSchema, validationHook),
    async (c) => {
      const merchantId = c.req.valid("param").id;
      const merchant = await updateMerchant({
        db: await databaseFor(c.env, merchantId),
        directory: c.var.directoryDb,
        config: c.var.config,
        merchantId,
        input: c.req.valid("json"),
        probe: probeWith(c),
        requestId: c.var.requestId,
      });
      return c.json({ merchant });
    },
  )
  .post("/merchants/:id/api-keys", zValidator("param", merchantParams, validationHook), async (c) => {
    const merchantId = c.req.valid("param").id;
    const db = await databaseFor(c.env, merchantId);
    const created = await issueApiKey({ db, directory: c.var.directoryDb, merchantId, requestId: c.var.requestId });
    c.header("Cache-Control", "no-store");
    return c.json(created, 201);
  })
  .delete("/merchants/:id/api-keys/:keyId", zValidator("param", apiKeyParams, validationHook), async (c) => {
    const { id: merchantId, keyId } = c.req.valid("param");
    const db = await databaseFor(c.env, merchantId);
    return c.json(await revokeApiKey({ db, directory: c.var.directoryDb, merchantId, keyId, requestId: c.var.requestId }));
  })
  .post(
    "/merchants/:id/webhook-credential",
    zValidator("param", merchantParams, validationHook),
    // The body is optional: none at all takes the defaults.
    jsonBody(MAX_ADMIN_BODY_BYTES, { optional: true }),
    zValidator("json", rotateWebhookCredentialSchema, validationHook),
    async (c) => {
      const merchantId = c.req.valid("param").id;
      const db = await databaseFor(c.env, merchantId);
      const rotated = await rotateWebhookCredential({ db, merchantId, input: c.req.valid("json") });
      await recordAdminAction(c.var.directoryDb, {
        action: "webhook_credential.rotate",
        target: auditTarget.merchant(merchantId),
        requestId: c.var.requestId,
      });
      c.header("Cache-Control", "no-store");
      return c.json(rotated, 201);
    },
  )
  .post(
    "/merchants/:id/fulfillment-secret",
    zValidator("param", merchantParams, validationHook),
    jsonBody(MAX_ADMIN_BODY_BYTES, { optional: true }),
    zValidator("json", rotateWebhookCredentialSchema, validationHook),
    async (c) => {
      const merchantId = c.req.valid("param").id;
      const db = await databaseFor(c.env, merchantId);
      const rotated = await rotateSigningSecret(db, c.var.config, merchantId, c.req.valid("json").overlap_hours);
      await recordAdminAction(c.var.directoryDb, {
        action: "signing_secret.rotate",
        target: auditTarget.merchant(merchantId),
        requestId: c.var.requestId,
      });
      c.header("Cache-Control", "no-store");
      return c.json(rotated, 201);
    },
  )
  .post("/reseal", async (c) => {
    const job = await startReseal(c.env, c.env.BATCHES);
    await recordAdminAction(c.var.directoryDb, { action: "secrets.reseal", target: `reseal:${job.id}`, requestId: c.var.requestId });
    return c.json({ job: { ...job, secrets_under_old_keys: await secretsUnderOldKeys(c.env, c.var.config) } }, 202);
  })
  .get("/reseal/:jobId", async (c) => {
    const job = await findReseal(c.env, c.req.param("jobId"));
    return c.json({ job: { ...job, secrets_under_old_keys: await secretsUnderOldKeys(c.env, c.var.config) } });
  })
  .get("/reconciliation/runs", zValidator("query", cursorQuery, validationHook), async (c) =>
    c.json(await listReconciliationRuns(shardDatabases(c.env), c.req.valid("query").cursor)),
  )
  .get("/audit", zValidator("query", cursorQuery, validationHook), async (c) =>
    c.json(await listAdminActions(c.var.directoryDb, c.req.valid("query").cursor)),
  )
  .get("/dead-letters", zValidator("query", deadLettersQuery, validationHook), async (c) => {
    const { merchant, cursor } = c.req.valid("query");
    return c.json(await listDeadLetters(c.env, merchant, cursor));
  })
  .post("/dead-letters/redrive", jsonBody(MAX_ADMIN_BODY_BYTES), zValidator("json", redriveSchema, validationHook), async (c) => {
    const result = await redriveFromShards(c.env, c.req.valid("json"));
    // One entry per letter sent again: the audit says which letters this request redrove.
    const entries = result.redriven.map((id) => ({
      action: "dead_letter.redrive" as const,
      target: auditTarget.deadLetter(id),
      requestId: c.var.requestId,
    }));
    await recordAdminActions(c.var.directoryDb, entries);
    return c.json(result);
  });
