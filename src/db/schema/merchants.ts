import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import type { RateLimitSettings } from "../../rate-limiter/limiter";
import { nowIso } from "./columns";

export const merchants = sqliteTable(
  "merchants",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    smartRouterProjectId: text("smart_router_project_id").notNull(),
    /** AES-GCM ciphertext of the project's Smart Router secret key. */
    smartRouterSecretCiphertext: text("smart_router_secret_ciphertext").notNull(),
    smartRouterSecretKeyId: text("smart_router_secret_key_id").notNull(),
    webhookUsername: text("webhook_username").notNull(),
    /** SHA-256 of the webhook Basic password; the password itself is shown once. */
    webhookPasswordHash: text("webhook_password_hash").notNull(),
    /** The password a rotation replaced, still accepted until `webhook_password_previous_valid_until` (the overlap). */
    webhookPasswordPreviousHash: text("webhook_password_previous_hash"),
    webhookPasswordPreviousValidUntil: text("webhook_password_previous_valid_until"),
    /** Deliveries that named an event Smart Router does not know (forged, or sent with a leaked credential): a count, not rows. */
    forgedDeliveries: integer("forged_deliveries").notNull().default(0),
    lastForgedAt: text("last_forged_at"),
    fulfillmentUrl: text("fulfillment_url"),
    /** When `fulfillment_url` went from unset to set: a batch never notifies for a capture before it (no old orders shipped). */
    fulfillmentUrlSetAt: text("fulfillment_url_set_at"),
    fulfillmentSecretCiphertext: text("fulfillment_secret_ciphertext").notNull(),
    fulfillmentSecretKeyId: text("fulfillment_secret_key_id").notNull(),
    /** The signing secret a rotation replaced: notifications carry both signatures until `…_previous_valid_until`. */
    fulfillmentSecretPreviousCiphertext: text("fulfillment_secret_previous_ciphertext"),
    fulfillmentSecretPreviousKeyId: text("fulfillment_secret_previous_key_id"),
    fulfillmentSecretPreviousValidUntil: text("fulfillment_secret_previous_valid_until"),
    /**
     * The alert notifications' own signing secret (0015), never the fulfilment one: issued when the alert URL is set,
     * rotatable with an overlap like it. Null while no alert URL is set, and for a merchant whose URL predates it.
     */
    alertSecretCiphertext: text("alert_secret_ciphertext"),
    alertSecretKeyId: text("alert_secret_key_id"),
    alertSecretPreviousCiphertext: text("alert_secret_previous_ciphertext"),
    alertSecretPreviousKeyId: text("alert_secret_previous_key_id"),
    alertSecretPreviousValidUntil: text("alert_secret_previous_valid_until"),
    /**
     * Set when Smart Router answered 401/403 to the merchant's key: its batch work stops until the key is PATCHed, which
     * clears it. The reason names the answer, never the key.
     */
    smartRouterKeyRefusedAt: text("smart_router_key_refused_at"),
    smartRouterKeyRefusedReason: text("smart_router_key_refused_reason"),
    /** JSON of the merchant's Smart Router rate limits, null for defaults. */
    rateLimits: text("rate_limits", { mode: "json" }).$type<RateLimitSettings>(),
    /** JSON of the merchant's alert thresholds and alert URL, null for defaults (alerts/rules.ts). */
    alertSettings: text("alert_settings", { mode: "json" }).$type<AlertSettings>(),
    createdAt: text("created_at").notNull().default(nowIso),
    updatedAt: text("updated_at").notNull().default(nowIso),
  },
  // A Smart Router project belongs to one merchant: a second merchant on it would import the first one's payments.
  (t) => [uniqueIndex("merchants_smart_router_project").on(t.smartRouterProjectId)],
);

/** Per-merchant alert thresholds (`PATCH /admin/merchants/{id}` `alerts`); an absent field takes its default. */
export interface AlertSettings {
  authorized_uncaptured_hours?: number;
  apm_pending_minutes?: number;
  forged_per_hour?: number;
  fulfillment_failing_minutes?: number;
  /** Where alert notifications are POSTed (the rules of `fulfillment_url`); null or absent: none are sent. */
  url?: string | null;
}

export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    merchantId: text("merchant_id")
      .notNull()
      .references(() => merchants.id),
    /** SHA-256 of the whole key. */
    keyHash: text("key_hash").notNull(),
    createdAt: text("created_at").notNull().default(nowIso),
    revokedAt: text("revoked_at"),
    /**
     * Whether the key has its row in `api_key_directory` (on DB). Keys issued since issue 20 are written there first and
     * stored with 1; older ones are entered by the cron's backfill (merchants/api-keys.ts), which sets it.
     */
    listedInDirectory: integer("listed_in_directory", { mode: "boolean" }).notNull().default(false),
  },
  (t) => [
    index("api_keys_merchant").on(t.merchantId),
    // Serves the backfill's "keys not yet listed" page; empty once every key is listed.
    index("api_keys_unlisted").on(t.id).where(sql`${t.listedInDirectory} = 0`),
  ],
);

/**
 * Which shard holds each API key (issue 20), read and written on DB (shard 0) only, as `merchant_shards`: presenting a
 * key costs one primary-key read here, then one read on the merchant's shard, whatever the key and however many shards.
 * A row is written before its key (a row without a key answers 401); a revoked key keeps its row (the shard says revoked).
 */
export const apiKeyDirectory = sqliteTable("api_key_directory", {
  keyId: text("key_id").primaryKey(),
  merchantId: text("merchant_id").notNull(),
  shard: integer("shard").notNull(),
  createdAt: text("created_at").notNull().default(nowIso),
});

/** Every admin action, never a secret: what was done, to what, when, and by which request. */
export const adminAudit = sqliteTable(
  "admin_audit",
  {
    id: text("id").primaryKey(),
    at: text("at").notNull().default(nowIso),
    action: text("action").notNull(),
    target: text("target").notNull(),
    requestId: text("request_id").notNull(),
  },
  (t) => [index("admin_audit_at").on(t.at, t.id)],
);

/**
 * The shard directory (issue 14, src/db/shards.ts): which D1 database holds each merchant, assigned at registration to
 * the least full. Read and written on `DB` (shard 0) only; every shard carries the table, as it carries the whole schema.
 * The Smart Router project is claimed here too, so a project belongs to one merchant across every shard.
 */
export const merchantShards = sqliteTable(
  "merchant_shards",
  {
    merchantId: text("merchant_id").primaryKey(),
    shard: integer("shard").notNull(),
    smartRouterProjectId: text("smart_router_project_id").notNull(),
    createdAt: text("created_at").notNull().default(nowIso),
  },
  (t) => [uniqueIndex("merchant_shards_project").on(t.smartRouterProjectId), index("merchant_shards_shard").on(t.shard)],
);
