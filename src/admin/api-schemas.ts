import { z } from "@hono/zod-openapi";
import { ADMIN_ACTIONS } from "../audit/audit";
import { alertSettingsSchema, rateLimitsSchema } from "../merchants/schemas";

const nextCursor = z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last page." });

/** A merchant as the admin API shows it (merchants/merchants.ts `presentMerchant`): never a secret. */
const merchantSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    shard: z.string().openapi({ description: "The binding of the merchant's D1 shard: `DB`, `DB_SHARD_1`, …", example: "DB" }),
    smart_router: z.object({ project_id: z.string() }),
    fulfillment_url: z.string().nullable(),
    rate_limits: rateLimitsSchema.nullable(),
    alerts: alertSettingsSchema.required().extend({
      url: z.string().nullable(),
      signing_secret_set: z.boolean().openapi({
        description:
          "Whether alert notifications have their own signing secret. False for an alert URL set before they had one: its " +
          "notifications wait until `POST /admin/merchants/{id}/alert-secret` issues one.",
      }),
    }),
    smart_router_key_refused: z
      .object({ at: z.string(), detail: z.string().nullable() })
      .nullable()
      .openapi({ description: "Set while Smart Router refuses the merchant's key: its batch work waits for a PATCH of the key." }),
    webhook: z.object({ path: z.string(), username: z.string(), previous_valid_until: z.string().nullable() }),
    forged_deliveries: z.object({ count: z.int(), last_at: z.string().nullable() }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Merchant");

export const merchantResponse = z.object({ merchant: merchantSchema }).openapi("MerchantResponse");

/** `PATCH /admin/merchants/{id}`: the merchant, and the alert signing secret when this change issued one (shown once). */
export const updatedMerchantResponse = z
  .object({
    merchant: merchantSchema,
    alert_signing_secret: z
      .string()
      .optional()
      .openapi({
        description:
          "`whsec_…`, present only when this change set the alert URL (or set it on a merchant without an alert secret): alert " +
          "notifications are signed with it, never with the fulfilment secret. Shown once.",
      }),
  })
  .openapi("UpdatedMerchant");

export const merchantPageResponse = z.object({ merchants: z.array(merchantSchema), next_cursor: nextCursor }).openapi("MerchantPage");

/** `POST /admin/merchants`: the credentials are shown here and never again. */
export const createdMerchantResponse = z
  .object({
    merchant: merchantSchema,
    api_key: z.string(),
    api_key_id: z.string(),
    webhook: z.object({ path: z.string(), username: z.string(), password: z.string() }),
    fulfillment: z.object({ signing_secret: z.string() }),
  })
  .openapi("CreatedMerchant");

export const issuedApiKeyResponse = z.object({ api_key: z.object({ id: z.string(), key: z.string() }) }).openapi("IssuedApiKey");

export const revokedApiKeyResponse = z.object({ api_key: z.object({ id: z.string(), revoked_at: z.string() }) }).openapi("RevokedApiKey");

export const rotatedWebhookCredentialResponse = z
  .object({
    webhook: z.object({ path: z.string(), username: z.string(), password: z.string(), previous_valid_until: z.string() }),
  })
  .openapi("RotatedWebhookCredential");

export const rotatedSigningSecretResponse = z
  .object({ fulfillment: z.object({ signing_secret: z.string(), previous_valid_until: z.string() }) })
  .openapi("RotatedSigningSecret");

/** `POST /admin/merchants/{id}/alert-secret`: the new alert signing secret, shown once. */
export const rotatedAlertSecretResponse = z
  .object({
    alert_signing_secret: z.string(),
    previous_valid_until: z
      .string()
      .nullable()
      .openapi({ description: "Until when notifications also carry the replaced secret's signature; null when there was none." }),
  })
  .openapi("RotatedAlertSecret");

export const resealJobResponse = z
  .object({
    job: z.object({
      id: z.string(),
      status: z.enum(["running", "completed", "failed"]),
      total: z.int(),
      done: z.int(),
      started_at: z.string().nullable(),
      finished_at: z.string().nullable(),
      error: z.string().optional(),
      secrets_under_old_keys: z.int(),
    }),
  })
  .openapi("ResealJob");

export const reconciliationRunPageResponse = z
  .object({
    runs: z.array(
      z.object({
        id: z.string(),
        started_at: z.string(),
        found: z.int(),
        refreshed: z.int(),
        fixed: z.int(),
        last_update_at: z.string().nullable(),
      }),
    ),
    next_cursor: nextCursor,
  })
  .openapi("ReconciliationRunPage");

export const auditPageResponse = z
  .object({
    entries: z.array(
      z.object({
        at: z.string(),
        action: z.string().openapi({ description: `One of ${ADMIN_ACTIONS.join(", ")}.` }),
        target: z.string(),
        request_id: z.string(),
      }),
    ),
    next_cursor: nextCursor,
  })
  .openapi("AuditPage");

export const deadLetterPageResponse = z
  .object({
    dead_letters: z.array(
      z.object({
        id: z.string(),
        queue: z.string(),
        merchant_id: z.string().nullable(),
        body: z.unknown(),
        error: z.string().nullable(),
        attempts: z.int(),
        created_at: z.string(),
        redriven_at: z
          .string()
          .nullable()
          .optional()
          .openapi({ description: "Archived letters only (`archived=true`): when it was redriven." }),
      }),
    ),
    next_cursor: nextCursor,
  })
  .openapi("DeadLetterPage");

export const redriveResponse = z
  .object({ redriven: z.array(z.string()), skipped: z.array(z.object({ id: z.string(), reason: z.string() })) })
  .openapi("Redrive");

/** `GET /admin/shards` (db/shard-status.ts `shardStatuses`): a field a failing shard could not give is null. */
export const shardStatusResponse = z
  .object({
    shards: z.array(
      z.object({
        binding: z.string().openapi({ example: "DB" }),
        index: z.int(),
        ok: z.boolean(),
        merchants: z.int().nullable(),
        bytes: z.int().nullable().openapi({ description: "The database's size as D1 reports it (`meta.size_after`)." }),
        capacity_bytes: z.int(),
        used: z.number().nullable().openapi({ description: "`bytes / capacity_bytes`, to 4 decimals." }),
        migration: z.string().nullable().openapi({ description: "The last migration applied to the shard (`d1_migrations`)." }),
        growth_bytes_per_day: z
          .int()
          .nullable()
          .openapi({
            description:
              "Growth over the last 7 days, from the sizes the cron samples once an hour (oldest to newest); null with fewer " +
              "than 2 samples or no growth.",
          }),
        days_to_full: z.number().nullable().openapi({
          description: "Days until `bytes` reaches `capacity_bytes` at `growth_bytes_per_day`, to a tenth; null without growth.",
        }),
        error: z.string().optional().openapi({ description: "Why the shard failed a read; only when `ok` is false." }),
      }),
    ),
  })
  .openapi("ShardStatus");

/** A merchant's move between shards (contract, "Shards: watch and move"). */
export const moveResponse = z
  .object({
    move: z.object({
      id: z.string(),
      merchant: z.string(),
      from: z.string(),
      to: z.string(),
      status: z.enum(["copying", "switching", "cleaning", "completed", "failed"]),
      rows_copied: z.int(),
      started_at: z.string(),
      finished_at: z.string().nullable(),
      error: z.string().nullable(),
    }),
  })
  .openapi("MerchantMove");

export const startMoveSchema = z.strictObject({
  to: z
    .string()
    .regex(/^DB(_SHARD_[1-9][0-9]{0,2})?$/, "must name a D1 binding: DB or DB_SHARD_<n>")
    .openapi({ description: "The binding of the shard to move to, as wrangler.toml names it.", example: "DB_SHARD_1" }),
});
