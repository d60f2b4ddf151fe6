import { type Context, Hono } from "hono";
import { z } from "zod";
import type { AppContext } from "../app";
import { recentReconciliationRuns } from "../batches/reconciliation";
import { ApiError } from "../errors";
import { parseJsonBody } from "../lib/body";
import {
  type CredentialProbe,
  findMerchant,
  issueApiKey,
  presentMerchant,
  registerMerchant,
  revokeApiKey,
  updateMerchant,
} from "../merchants/merchants";
import { createMerchantSchema, merchantIdSchema, updateMerchantSchema } from "../merchants/schemas";
import { requireAdmin } from "../middleware/admin-auth";
import { listDeadLetters, redriveDeadLetters } from "../queue/redrive";
import { probeCredentials } from "../smart-router/probe";

const redriveSchema = z.union([
  z.strictObject({ ids: z.array(z.string().min(1).max(200)).min(1).max(100) }),
  z.strictObject({ merchant: merchantIdSchema }),
]);

const MAX_ADMIN_BODY_BYTES = 16 * 1024;

function merchantIdParam(raw: string): string {
  const parsed = merchantIdSchema.safeParse(raw);
  if (!parsed.success) throw new ApiError("not_found", "merchant not found");
  return parsed.data;
}

/** The one call registration and credential changes make to Smart Router, with the request's bindings. */
const probeWith =
  (c: Context<AppContext>): CredentialProbe =>
  (credentials) =>
    probeCredentials(c.env, c.var.config, credentials);

export const adminRoutes = new Hono<AppContext>()
  .use(requireAdmin())
  .post("/merchants", async (c) => {
    const input = await parseJsonBody(c.req.raw, createMerchantSchema, MAX_ADMIN_BODY_BYTES);
    const created = await registerMerchant({ db: c.var.db, config: c.var.config, input, probe: probeWith(c) });
    c.header("Cache-Control", "no-store");
    return c.json(created, 201);
  })
  .get("/merchants/:id", async (c) => {
    const row = await findMerchant(c.var.db, merchantIdParam(c.req.param("id")));
    return c.json({ merchant: presentMerchant(row) });
  })
  .patch("/merchants/:id", async (c) => {
    const merchantId = merchantIdParam(c.req.param("id"));
    const input = await parseJsonBody(c.req.raw, updateMerchantSchema, MAX_ADMIN_BODY_BYTES);
    const merchant = await updateMerchant({ db: c.var.db, config: c.var.config, merchantId, input, probe: probeWith(c) });
    return c.json({ merchant });
  })
  .post("/merchants/:id/api-keys", async (c) => {
    const created = await issueApiKey({ db: c.var.db, merchantId: merchantIdParam(c.req.param("id")) });
    c.header("Cache-Control", "no-store");
    return c.json(created, 201);
  })
  .delete("/merchants/:id/api-keys/:keyId", async (c) => {
    const revoked = await revokeApiKey({ db: c.var.db, merchantId: merchantIdParam(c.req.param("id")), keyId: c.req.param("keyId") });
    return c.json(revoked);
  })
  .get("/reconciliation/runs", async (c) => c.json({ runs: await recentReconciliationRuns(c.var.db) }))
  .get("/dead-letters", async (c) => {
    const merchant = c.req.query("merchant");
    if (merchant !== undefined && !merchantIdSchema.safeParse(merchant).success) {
      throw new ApiError("invalid_query", "merchant must be a merchant id");
    }
    const cursor = c.req.query("cursor");
    return c.json(await listDeadLetters(c.var.db, merchant, cursor));
  })
  .post("/dead-letters/redrive", async (c) => {
    const selection = await parseJsonBody(c.req.raw, redriveSchema, MAX_ADMIN_BODY_BYTES);
    return c.json(await redriveDeadLetters(c.var.db, c.env, selection));
  });
