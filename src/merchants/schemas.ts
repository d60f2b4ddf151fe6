import { z } from "zod";
import { checkFulfillmentUrl } from "../outbound/url";

/** WEBHOOK_LIMITER's `simple.limit` in wrangler.toml: one unit of a merchant's edge limit, per key and window. */
export const DELIVERY_LIMIT_UNIT = 100;
/** The highest configurable edge limit (6,000 keys of the binding). */
export const MAX_DELIVERIES_PER_MINUTE = 600_000;

export const merchantIdSchema = z.string().regex(/^[a-z0-9_-]{1,64}$/, "must be 1-64 characters of a-z, 0-9, _ and -");

const projectIdSchema = z.string().regex(/^(test-)?proj_[A-Za-z0-9]{1,64}$/, "must be a Smart Router project id (proj_… or test-proj_…)");

const secretKeySchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces");

/**
 * A `fulfillment_url` (and an endpoint's `url`): the rule of outbound/url.ts. Loopback URLs pass here and are refused
 * by the verbs unless ALLOW_LOOPBACK_FULFILLMENT_URLS allows them (configuration).
 */
export const fulfillmentUrlSchema = z
  .string()
  .max(2048)
  .superRefine((value, ctx) => {
    const check = checkFulfillmentUrl(value);
    if (!check.ok) ctx.addIssue({ code: "custom", message: check.problem });
  });

export const smartRouterCredentialsSchema = z.strictObject({
  project_id: projectIdSchema,
  secret_key: secretKeySchema,
});

export const rateLimitsSchema = z.strictObject({
  primary_rpm: z.int().min(1).max(1_000_000).optional(),
  events_rpm: z.int().min(1).max(1_000_000).optional(),
  sandbox_rpm: z.int().min(1).max(1_000_000).optional(),
  batch_share: z.number().gt(0).lte(1).optional(),
  // In steps of the WEBHOOK_LIMITER binding's limit: a value between two steps is rounded up (ingest/delivery-limit.ts).
  webhooks_rpm: z.int().min(DELIVERY_LIMIT_UNIT).max(MAX_DELIVERIES_PER_MINUTE).optional(),
});

/** `alerts` of `PATCH /admin/merchants/{id}`: any subset of the thresholds (defaults in alerts/rules.ts) and the alert URL. */
export const alertSettingsSchema = z.strictObject({
  authorized_uncaptured_hours: z.int().min(1).max(720).optional(),
  apm_pending_minutes: z.int().min(1).max(10_080).optional(),
  forged_per_hour: z.int().min(1).max(1_000_000).optional(),
  fulfillment_failing_minutes: z.int().min(1).max(10_080).optional(),
  // The rules of fulfillment_url: notifications go out the same way, signed with the same secret.
  url: fulfillmentUrlSchema.nullable().optional(),
});

/** Body of `POST /admin/merchants`. */
export const createMerchantSchema = z.strictObject({
  id: merchantIdSchema,
  name: z.string().trim().min(1).max(200),
  smart_router: smartRouterCredentialsSchema,
  fulfillment_url: fulfillmentUrlSchema.nullable().optional(),
});

/** Body of `PATCH /admin/merchants/{id}`: any subset of the changeable fields. */
export const updateMerchantSchema = z
  .strictObject({
    name: z.string().trim().min(1).max(200).optional(),
    smart_router: smartRouterCredentialsSchema.partial().optional(),
    fulfillment_url: fulfillmentUrlSchema.nullable().optional(),
    rate_limits: rateLimitsSchema.nullable().optional(),
    alerts: alertSettingsSchema.nullable().optional(),
  })
  .refine((body) => Object.keys(body).length > 0, "body must change at least one field");

export type CreateMerchantInput = z.infer<typeof createMerchantSchema>;
export type UpdateMerchantInput = z.infer<typeof updateMerchantSchema>;
