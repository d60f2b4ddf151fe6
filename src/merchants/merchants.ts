import { and, asc, eq, gt, isNull, ne } from "drizzle-orm";
import { z } from "zod";
import { auditTarget, recordAdminAction } from "../audit/audit";
import type { Database } from "../db/client";
import { apiKeys, eventLogCursors, merchantShards, merchants } from "../db/schema";
import { directoryDatabase, leastFullShard, mergedRows, rememberShard, shardDatabases, shardIndexOf } from "../db/shards";
import type { AppConfig, AppEnv } from "../env";
import { ApiError } from "../errors";
import { decodePageCursor, keysetPage } from "../lib/cursor";
import { log } from "../lib/log";
import { FULFILLMENT_URL_RULE, fulfillmentUrlAllowed } from "../outbound/url";
import { generateApiKey, generateSigningSecret, hashCredential, randomHex, randomToken } from "../security/credentials";
import { openSecret, sealSecret } from "../security/vault";
import type { CredentialCheck } from "../smart-router/probe";
import { alertThresholds } from "./alert-thresholds";
import { forgetWebhookCredentials } from "./credential-directory";
import { type CreateMerchantInput, merchantIdSchema, type UpdateMerchantInput } from "./schemas";

type MerchantRow = typeof merchants.$inferSelect;

/** The merchant as the admin API shows it: never a secret, not even encrypted. */
export function presentMerchant(row: MerchantRow) {
  return {
    id: row.id,
    name: row.name,
    smart_router: { project_id: row.smartRouterProjectId },
    fulfillment_url: row.fulfillmentUrl,
    rate_limits: row.rateLimits ?? null,
    // Not a secret: the thresholds in force (each set one or its default) and where alert notifications go.
    alerts: { ...alertThresholds(row.alertSettings), url: row.alertSettings?.url ?? null },
    // Set while Smart Router refuses the merchant's key (401/403): its batch work is stopped until the key is PATCHed.
    smart_router_key_refused: row.smartRouterKeyRefusedAt
      ? { at: row.smartRouterKeyRefusedAt, detail: row.smartRouterKeyRefusedReason }
      : null,
    webhook: { path: webhookPath(row.id), username: row.webhookUsername, previous_valid_until: row.webhookPasswordPreviousValidUntil },
    // Deliveries naming events Smart Router does not know (webhooks/forged.ts): a leaked credential shows here.
    forged_deliveries: { count: row.forgedDeliveries, last_at: row.lastForgedAt },
    created_at: row.createdAt,
    updated_at: row.updatedAt,
  };
}

export function webhookPath(merchantId: string): string {
  return `/webhooks/smart-router/${merchantId}`;
}

/** Additional data binding each ciphertext to its merchant and purpose. */
export const secretContext = {
  smartRouter: (merchantId: string) => `merchant:${merchantId}:smart_router_secret_key`,
  fulfillment: (merchantId: string) => `merchant:${merchantId}:fulfillment_signing_secret`,
};

async function insertApiKey(db: Database, merchantId: string) {
  const { keyId, apiKey } = generateApiKey();
  return {
    keyId,
    apiKey,
    insert: db.insert(apiKeys).values({ id: keyId, merchantId, keyHash: await hashCredential(apiKey) }),
  };
}

/** Registers a merchant; the API key, webhook password and fulfilment signing secret are returned here and never again. */
export async function registerMerchant({
  env,
  config,
  input,
  probe,
  requestId,
}: {
  env: AppEnv;
  config: AppConfig;
  input: CreateMerchantInput;
  probe: CredentialProbe;
  requestId: string;
}) {
  if (input.fulfillment_url) requireAllowedFulfillmentUrl(config, input.fulfillment_url);
  const directory = directoryDatabase(env);
  if ((await shardIndexOf(env, input.id)) !== undefined) throw new ApiError("conflict", `merchant ${input.id} already exists`);
  await requireProjectUnclaimed(directory, input.smart_router.project_id, input.id);
  const check = await checkCredentials(probe, { projectId: input.smart_router.project_id, secretKey: input.smart_router.secret_key });

  const webhookUsername = `sr_${randomHex(6)}`;
  const webhookPassword = randomToken(24);
  const signingSecret = generateSigningSecret();
  const smartRouterSecret = await sealSecret(config, input.smart_router.secret_key, secretContext.smartRouter(input.id));
  const sealedSigningSecret = await sealSecret(config, signingSecret, secretContext.fulfillment(input.id));
  const shard = await leastFullShard(env);
  const db = shard.db;
  const key = await insertApiKey(db, input.id);

  const insertMerchant = db.insert(merchants).values({
    id: input.id,
    name: input.name,
    smartRouterProjectId: input.smart_router.project_id,
    smartRouterSecretCiphertext: smartRouterSecret.ciphertext,
    smartRouterSecretKeyId: smartRouterSecret.keyId,
    webhookUsername,
    webhookPasswordHash: await hashCredential(webhookPassword),
    fulfillmentUrl: input.fulfillment_url ?? null,
    fulfillmentUrlSetAt: input.fulfillment_url ? new Date().toISOString() : null,
    fulfillmentSecretCiphertext: sealedSigningSecret.ciphertext,
    fulfillmentSecretKeyId: sealedSigningSecret.keyId,
  });
  // The event-log backstop starts at the newest event Smart Router had at registration (none: from registration on).
  const startWalk = db.insert(eventLogCursors).values({
    merchantId: input.id,
    watermarkEventId: check.kind === "accepted" ? (check.newestEvent?.id ?? null) : null,
    watermarkFiredAt: check.kind === "accepted" ? (check.newestEvent?.firedAt ?? null) : null,
  });
  // The directory entry claims the id and the project across every shard: two concurrent creations of one id, or onto
  // one project, meet at its unique constraints, and the loser writes nothing on any shard.
  try {
    await directory
      .insert(merchantShards)
      .values({ merchantId: input.id, shard: shard.index, smartRouterProjectId: input.smart_router.project_id });
  } catch (error) {
    throw uniqueConflict(error, input.id, input.smart_router.project_id);
  }
  try {
    await db.batch([insertMerchant, key.insert, startWalk]);
  } catch (error) {
    // The merchant does not exist on its shard: its claim is released, so the same registration can be made again.
    await directory.delete(merchantShards).where(eq(merchantShards.merchantId, input.id));
    throw uniqueConflict(error, input.id, input.smart_router.project_id);
  }
  rememberShard(input.id, shard.index);
  await recordAdminAction(directory, { action: "merchant.create", target: auditTarget.merchant(input.id), requestId });
  // Its first delivery to this isolate is accepted without waiting for the credential directory's refresh.
  forgetWebhookCredentials();
  const row = await findMerchant(db, input.id);
  return {
    merchant: presentMerchant(row),
    api_key: key.apiKey,
    api_key_id: key.keyId,
    webhook: { path: webhookPath(input.id), username: webhookUsername, password: webhookPassword },
    fulfillment: { signing_secret: signingSecret },
  };
}

/** One call with a merchant's Smart Router credentials (smart-router/probe.ts), injected by the route. */
export type CredentialProbe = (credentials: { projectId: string; secretKey: string }) => Promise<CredentialCheck>;

/** Refuses (422, naming the answer) credentials Smart Router refuses; an outage during the probe lets them through. */
async function checkCredentials(probe: CredentialProbe, credentials: { projectId: string; secretKey: string }) {
  const check = await probe(credentials);
  if (check.kind === "refused") {
    throw new ApiError(
      "credentials_refused",
      `smart_router: ${check.detail} for project ${credentials.projectId}; check the project id and secret key`,
    );
  }
  if (check.kind === "unknown") log("warn", "merchant.credentials_unchecked", { project_id: credentials.projectId, detail: check.detail });
  return check;
}

/** Refuses (400, naming the field) a loopback fulfilment URL unless the configuration allows them (local development). */
function requireAllowedFulfillmentUrl(config: AppConfig, url: string, field = "fulfillment_url") {
  if (!fulfillmentUrlAllowed(url, config.ALLOW_LOOPBACK_FULFILLMENT_URLS)) {
    throw new ApiError(
      "invalid_body",
      `${field}: a loopback URL is accepted only where ALLOW_LOOPBACK_FULFILLMENT_URLS is "true" (local development); ${FULFILLMENT_URL_RULE}`,
    );
  }
}

const projectTaken = (projectId: string | undefined, owner?: string) =>
  new ApiError(
    "conflict",
    `smart_router.project_id ${projectId} belongs to ${owner ? `merchant ${owner}` : "another merchant"}; a Smart Router project belongs to one merchant`,
  );

/**
 * A Smart Router project belongs to one merchant (409 naming it): a second one on it would import the first one's
 * payments. Checked in the shard directory, which holds every merchant's project (`directory`: DB).
 */
async function requireProjectUnclaimed(directory: Database, projectId: string, merchantId: string) {
  const owner = await directory
    .select({ id: merchantShards.merchantId })
    .from(merchantShards)
    .where(and(eq(merchantShards.smartRouterProjectId, projectId), ne(merchantShards.merchantId, merchantId)))
    .get();
  if (owner) throw projectTaken(projectId, owner.id);
}

/** The 409 a unique constraint failure stands for (D1 names the column), or the error itself when it is none of ours. */
function uniqueConflict(error: unknown, merchantId: string, projectId: string | undefined): unknown {
  // drizzle wraps a failed single query; D1's own message is its cause.
  const text = `${String(error)} ${error instanceof Error ? String(error.cause) : ""}`;
  if (/UNIQUE constraint failed: merchant(s|_shards)\.smart_router_project_id/.test(text)) return projectTaken(projectId);
  if (/UNIQUE constraint failed: (merchants\.id|merchant_shards\.merchant_id)/.test(text)) {
    return new ApiError("conflict", `merchant ${merchantId} already exists`);
  }
  return error;
}

const merchantCursor = z.strictObject({ i: merchantIdSchema });

/** Every merchant of every shard, by id, in keyset pages of `limit` (the admin's list: no secrets, as `presentMerchant`). */
export async function listMerchants(env: AppEnv, { cursor, limit }: { cursor?: string; limit: number }) {
  const after = cursor === undefined ? undefined : decodePageCursor(cursor, merchantCursor).i;
  const rows = await mergedRows(
    shardDatabases(env),
    (db) =>
      db
        .select()
        .from(merchants)
        .where(after === undefined ? undefined : gt(merchants.id, after))
        .orderBy(asc(merchants.id))
        .limit(limit + 1),
    (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
  const { page, nextCursor } = keysetPage(rows, limit, (row) => ({ i: row.id }));
  return { merchants: page.map(presentMerchant), next_cursor: nextCursor };
}

/** The merchant row, or a 404 ApiError. */
export async function findMerchant(db: Database, merchantId: string): Promise<MerchantRow> {
  const row = await db.select().from(merchants).where(eq(merchants.id, merchantId)).get();
  if (!row) throw new ApiError("not_found", `merchant ${merchantId} not found`);
  return row;
}

/** Applies a PATCH on the merchant's shard (`db`); a new Smart Router secret key is sealed before it is stored. */
export async function updateMerchant({
  db,
  directory,
  config,
  merchantId,
  input,
  probe,
  requestId,
}: {
  db: Database;
  /** DB: the shard directory (where a new project is claimed) and the audit. */
  directory: Database;
  config: AppConfig;
  merchantId: string;
  input: UpdateMerchantInput;
  probe: CredentialProbe;
  requestId: string;
}) {
  if (input.fulfillment_url) requireAllowedFulfillmentUrl(config, input.fulfillment_url);
  if (input.alerts?.url) requireAllowedFulfillmentUrl(config, input.alerts.url, "alerts.url");
  const current = await findMerchant(db, merchantId);
  const projectId = input.smart_router?.project_id;
  const projectMoves = projectId !== undefined && projectId !== current.smartRouterProjectId;
  if (projectMoves) await requireProjectUnclaimed(directory, projectId, merchantId);
  if (input.smart_router !== undefined) {
    const credentials = {
      projectId: input.smart_router.project_id ?? current.smartRouterProjectId,
      secretKey: input.smart_router.secret_key ?? (await smartRouterCredentials(config, current)).secretKey,
    };
    await checkCredentials(probe, credentials);
  }
  const changes: Partial<typeof merchants.$inferInsert> = { updatedAt: new Date().toISOString() };
  if (input.name !== undefined) changes.name = input.name;
  if (input.fulfillment_url !== undefined) {
    changes.fulfillmentUrl = input.fulfillment_url;
    // Changing one URL for another keeps the moment fulfilment began; clearing it ends it.
    if (input.fulfillment_url === null) changes.fulfillmentUrlSetAt = null;
    else if (current.fulfillmentUrl === null) changes.fulfillmentUrlSetAt = changes.updatedAt;
  }
  if (input.rate_limits !== undefined) {
    changes.rateLimits = input.rate_limits === null ? null : { ...(current.rateLimits ?? {}), ...input.rate_limits };
  }
  if (input.alerts !== undefined) {
    changes.alertSettings = input.alerts === null ? null : { ...(current.alertSettings ?? {}), ...input.alerts };
  }
  if (input.smart_router?.project_id !== undefined) changes.smartRouterProjectId = input.smart_router.project_id;
  if (input.smart_router !== undefined) {
    // New credentials: whatever Smart Router refused before is for them to prove again; batch work resumes.
    changes.smartRouterKeyRefusedAt = null;
    changes.smartRouterKeyRefusedReason = null;
  }
  if (input.smart_router?.secret_key !== undefined) {
    const sealed = await sealSecret(config, input.smart_router.secret_key, secretContext.smartRouter(merchantId));
    changes.smartRouterSecretCiphertext = sealed.ciphertext;
    changes.smartRouterSecretKeyId = sealed.keyId;
  }
  if (projectMoves) {
    try {
      // Claimed in the directory first: another merchant that took the project since the check above fails this.
      await directory.update(merchantShards).set({ smartRouterProjectId: projectId }).where(eq(merchantShards.merchantId, merchantId));
    } catch (error) {
      throw uniqueConflict(error, merchantId, projectId);
    }
  }
  await db.update(merchants).set(changes).where(eq(merchants.id, merchantId));
  await recordAdminAction(directory, { action: "merchant.update", target: auditTarget.merchant(merchantId), requestId });
  // The edge limit lives in the credential directory: this isolate sees a new one at once, others within its refresh.
  if (input.rate_limits !== undefined) forgetWebhookCredentials();
  return presentMerchant(await findMerchant(db, merchantId));
}

/** Issues another API key on the merchant's shard (`db`); existing keys keep working until revoked. */
export async function issueApiKey({
  db,
  directory,
  merchantId,
  requestId,
}: {
  db: Database;
  directory: Database;
  merchantId: string;
  requestId: string;
}) {
  await findMerchant(db, merchantId);
  const key = await insertApiKey(db, merchantId);
  await key.insert;
  await recordAdminAction(directory, { action: "api_key.create", target: auditTarget.apiKey(merchantId, key.keyId), requestId });
  return { api_key: { id: key.keyId, key: key.apiKey } };
}

/** Revokes one key of the merchant; another merchant's key id is a 404. */
export async function revokeApiKey({
  db,
  directory,
  merchantId,
  keyId,
  requestId,
}: {
  db: Database;
  directory: Database;
  merchantId: string;
  keyId: string;
  requestId: string;
}) {
  const revokedAt = new Date().toISOString();
  const revoked = await db
    .update(apiKeys)
    .set({ revokedAt })
    .where(and(eq(apiKeys.id, keyId), eq(apiKeys.merchantId, merchantId), isNull(apiKeys.revokedAt)))
    .returning({ id: apiKeys.id })
    .get();
  if (!revoked) throw new ApiError("not_found", `no active api key ${keyId} for merchant ${merchantId}`);
  await recordAdminAction(directory, { action: "api_key.revoke", target: auditTarget.apiKey(merchantId, keyId), requestId });
  return { api_key: { id: keyId, revoked_at: revokedAt } };
}

/** The merchant's Smart Router credentials, decrypted for one outbound call. */
export async function smartRouterCredentials(config: AppConfig, row: MerchantRow) {
  const secretKey = await openSecret(
    config,
    { ciphertext: row.smartRouterSecretCiphertext, keyId: row.smartRouterSecretKeyId },
    secretContext.smartRouter(row.id),
  );
  return { projectId: row.smartRouterProjectId, secretKey };
}
