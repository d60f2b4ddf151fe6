import { and, asc, eq, gt, isNull, ne } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { z } from "zod";
import type { Database } from "../db/client";
import { placedHere } from "../db/fence";
import type { MerchantRow } from "../db/rows";
import { apiKeyDirectory, apiKeys, eventLogCursors, merchantShards, merchants } from "../db/schema";
import { bindingOf, directoryDatabase, mergedRows, rememberShard, shardForNewMerchant, shardIndexOf, shardsOf } from "../db/shards";
import type { AppConfig, AppEnv } from "../env";
import { ApiError } from "../errors";
import { decodePageCursor, keysetPage } from "../lib/cursor";
import { log } from "../lib/log";
import { FULFILLMENT_URL_RULE, fulfillmentUrlAllowed } from "../outbound/url";
import { generateSigningSecret, hashCredential, randomHex, randomToken } from "../security/credentials";
import { openSecret, sealSecret } from "../security/vault";
import type { CredentialCheck } from "../smart-router/probe";
import { alertSecretContext, alertSecretUnchanged, issuedAlertSecret, noAlertSecret } from "./alert-secret";
import { alertThresholds } from "./alert-thresholds";
import { type KeyHolder, newApiKey } from "./api-keys";
import { forgetWebhookCredentials } from "./credential-directory";
import { type CreateMerchantInput, merchantIdSchema, type UpdateMerchantInput } from "./schemas";

/** The merchant as the admin API shows it, with the binding of its shard (`shard`): never a secret, not even encrypted. */
export function presentMerchant(row: MerchantRow, shard: number) {
  return {
    id: row.id,
    name: row.name,
    shard: bindingOf(shard),
    smart_router: { project_id: row.smartRouterProjectId },
    fulfillment_url: row.fulfillmentUrl,
    rate_limits: row.rateLimits ?? null,
    // Not a secret: the thresholds in force (each set one or its default) and where alert notifications go.
    alerts: {
      ...alertThresholds(row.alertSettings),
      url: row.alertSettings?.url ?? null,
      // Whether alert notifications can be signed: false for a URL set before alerts had their own secret (rotate one).
      signing_secret_set: row.alertSecretCiphertext !== null,
    },
    // Set while Smart Router refuses the merchant's key (401/403): its batch work is stopped until the key is PATCHed.
    smart_router_key_refused: row.smartRouterKeyRefusedAt
      ? { at: row.smartRouterKeyRefusedAt, detail: row.smartRouterKeyRefusedReason }
      : null,
    webhook: { path: webhookPath(row.id), username: row.webhookUsername, previous_valid_until: row.webhookPasswordPreviousValidUntil },
    // Deliveries naming events Smart Router does not know (ingest/forged.ts): a leaked credential shows here.
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
  alert: alertSecretContext,
};

/** Registers a merchant; the API key, webhook password and fulfilment signing secret are returned here and never again. */
export async function registerMerchant({
  env,
  config,
  input,
  probe,
}: {
  env: AppEnv;
  config: AppConfig;
  input: CreateMerchantInput;
  probe: CredentialProbe;
}) {
  const directory = directoryDatabase(env);
  const check = await admitRegistration({ env, directory, config, input, probe });
  const credentials = await issueCredentials(config, input);
  // The answering shard with the most free bytes, none past 80 % (503 when none can take it, before anything is claimed).
  const shard = await shardForNewMerchant({ env, capacityBytes: config.SHARD_CAPACITY_BYTES });
  const key = await newApiKey({ db: shard.db, directory, merchantId: input.id, shard: shard.index });
  const inserts = [merchantInsert(shard.db, input, credentials), key.insert, eventLogStart(shard.db, input.id, check)] as const;
  await claimInDirectory(directory, input, shard.index, key);
  await insertOnShard({ directory, db: shard.db, input, keyId: key.keyId, inserts });
  rememberShard(input.id, shard.index);
  // Its first delivery to this isolate is accepted without waiting for the credential directory's refresh.
  forgetWebhookCredentials({ shard: shard.index });
  const row = await findMerchant({ db: shard.db, merchantId: input.id });
  return {
    merchant: presentMerchant(row, shard.index),
    api_key: key.apiKey,
    api_key_id: key.keyId,
    webhook: { path: webhookPath(input.id), username: credentials.webhookUsername, password: credentials.webhookPassword },
    fulfillment: { signing_secret: credentials.signingSecret },
  };
}

/** Refuses a registration before anything is written: a refused URL, a taken id or project, refused credentials. */
async function admitRegistration({
  env,
  directory,
  config,
  input,
  probe,
}: {
  env: AppEnv;
  directory: Database;
  config: AppConfig;
  input: CreateMerchantInput;
  probe: CredentialProbe;
}) {
  if (input.fulfillment_url) requireAllowedFulfillmentUrl(config, input.fulfillment_url);
  if ((await shardIndexOf(env, input.id)) !== undefined) throw new ApiError("conflict", `merchant ${input.id} already exists`);
  await requireProjectUnclaimed(directory, input.smart_router.project_id, input.id);
  return checkCredentials(probe, { projectId: input.smart_router.project_id, secretKey: input.smart_router.secret_key });
}

type IssuedCredentials = Awaited<ReturnType<typeof issueCredentials>>;

/** The new merchant's webhook credential and fulfilment signing secret, and its secrets sealed for storage. */
async function issueCredentials(config: AppConfig, input: CreateMerchantInput) {
  const webhookPassword = randomToken(24);
  const signingSecret = generateSigningSecret();
  return {
    webhookUsername: `sr_${randomHex(6)}`,
    webhookPassword,
    webhookPasswordHash: await hashCredential(webhookPassword),
    signingSecret,
    smartRouterSecret: await sealSecret(config, input.smart_router.secret_key, secretContext.smartRouter(input.id)),
    sealedSigningSecret: await sealSecret(config, signingSecret, secretContext.fulfillment(input.id)),
  };
}

/** The merchant's row: its secrets sealed, its webhook password hashed. */
function merchantInsert(db: Database, input: CreateMerchantInput, credentials: IssuedCredentials) {
  return db.insert(merchants).values({
    id: input.id,
    name: input.name,
    smartRouterProjectId: input.smart_router.project_id,
    smartRouterSecretCiphertext: credentials.smartRouterSecret.ciphertext,
    smartRouterSecretKeyId: credentials.smartRouterSecret.keyId,
    webhookUsername: credentials.webhookUsername,
    webhookPasswordHash: credentials.webhookPasswordHash,
    fulfillmentUrl: input.fulfillment_url ?? null,
    fulfillmentUrlSetAt: input.fulfillment_url ? new Date().toISOString() : null,
    fulfillmentSecretCiphertext: credentials.sealedSigningSecret.ciphertext,
    fulfillmentSecretKeyId: credentials.sealedSigningSecret.keyId,
  });
}

/** The event-log backstop starts at the newest event Smart Router had at registration (none: from registration on). */
function eventLogStart(db: Database, merchantId: string, check: CredentialCheck) {
  return db.insert(eventLogCursors).values({
    merchantId,
    watermarkEventId: check.kind === "accepted" ? (check.newestEvent?.id ?? null) : null,
    watermarkFiredAt: check.kind === "accepted" ? (check.newestEvent?.firedAt ?? null) : null,
  });
}

/**
 * The directory entry claims the id and the project across every shard: two concurrent creations of one id, or onto
 * one project, meet at its unique constraints, and the loser writes nothing on any shard. The first API key's directory
 * row is written in the same D1 batch, so a key never exists without it.
 */
async function claimInDirectory(directory: Database, input: CreateMerchantInput, shard: number, key: { listing: BatchItem<"sqlite"> }) {
  try {
    await directory.batch([
      directory.insert(merchantShards).values({ merchantId: input.id, shard, smartRouterProjectId: input.smart_router.project_id }),
      key.listing,
    ]);
  } catch (error) {
    throw uniqueConflict(error, input.id, input.smart_router.project_id);
  }
}

/** Writes the merchant on its shard in one D1 batch; should that fail, its directory claim (and key row) is released. */
async function insertOnShard({
  directory,
  db,
  input,
  keyId,
  inserts,
}: {
  directory: Database;
  db: Database;
  input: CreateMerchantInput;
  keyId: string;
  inserts: readonly [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]];
}) {
  try {
    await db.batch(inserts);
  } catch (error) {
    // The merchant does not exist on its shard: its claim is released, so the same registration can be made again.
    await directory.batch([
      directory.delete(merchantShards).where(eq(merchantShards.merchantId, input.id)),
      directory.delete(apiKeyDirectory).where(eq(apiKeyDirectory.keyId, keyId)),
    ]);
    throw uniqueConflict(error, input.id, input.smart_router.project_id);
  }
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
export function requireAllowedFulfillmentUrl(config: AppConfig, url: string, field = "fulfillment_url") {
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

/**
 * Every merchant of every shard, by id, in keyset pages of `limit` (the admin's list: no secrets, as `presentMerchant`),
 * each once: on the shard it is placed on (a move's copy arriving, or a moved merchant's rows awaiting the cleaning, are not).
 */
export async function listMerchants({ env, cursor, limit }: { env: AppEnv; cursor?: string; limit: number }) {
  const after = cursor === undefined ? undefined : decodePageCursor(cursor, merchantCursor).i;
  const shards = shardsOf(env);
  // Each row keeps the index of the shard it was read on.
  const rows = await mergedRows(
    shards.map((shard) => shard.db),
    async (db) => {
      const shard = shards.findIndex((each) => each.db === db);
      const found = await db
        .select()
        .from(merchants)
        .where(and(placedHere(merchants.id), after === undefined ? undefined : gt(merchants.id, after)))
        .orderBy(asc(merchants.id))
        .limit(limit + 1);
      return found.map((row) => ({ row, shard }));
    },
    (a, b) => (a.row.id < b.row.id ? -1 : a.row.id > b.row.id ? 1 : 0),
  );
  const { page, nextCursor } = keysetPage(rows, limit, ({ row }) => ({ i: row.id }));
  return { merchants: page.map(({ row, shard }) => presentMerchant(row, shard)), next_cursor: nextCursor };
}

/** The merchant row, or a 404 ApiError. */
export async function findMerchant({ db, merchantId }: { db: Database; merchantId: string }): Promise<MerchantRow> {
  const row = await db.select().from(merchants).where(eq(merchants.id, merchantId)).get();
  if (!row) throw new ApiError("not_found", `merchant ${merchantId} not found`);
  return row;
}

/** Applies a PATCH on the merchant's shard (`db`); a new Smart Router secret key is sealed before it is stored. */
export async function updateMerchant({
  db,
  shard,
  directory,
  config,
  merchantId,
  input,
  probe,
}: {
  db: Database;
  /** The index of the merchant's shard (`db`), shown as its binding. */
  shard: number;
  /** DB: the shard directory, where a new project is claimed. */
  directory: Database;
  config: AppConfig;
  merchantId: string;
  input: UpdateMerchantInput;
  probe: CredentialProbe;
}) {
  if (input.fulfillment_url) requireAllowedFulfillmentUrl(config, input.fulfillment_url);
  if (input.alerts?.url) requireAllowedFulfillmentUrl(config, input.alerts.url, "alerts.url");
  const current = await findMerchant({ db, merchantId });
  const projectId = input.smart_router?.project_id;
  const movesTo = projectId !== undefined && projectId !== current.smartRouterProjectId ? projectId : undefined;
  if (movesTo !== undefined) await requireProjectUnclaimed(directory, movesTo, merchantId);
  if (input.smart_router !== undefined) await checkCredentials(probe, await credentialsAfter(config, current, input.smart_router));
  const changes = await merchantChanges(config, current, input);
  const alertSecret = await alertSecretChanges(config, current, changes);
  if (movesTo !== undefined) await claimProject(directory, merchantId, movesTo);
  const written = await db
    .update(merchants)
    .set({ ...changes, ...alertSecret?.columns })
    // Compare-and-set on the alert secret it replaces when it writes one: the secret shown is the one stored.
    .where(and(eq(merchants.id, merchantId), alertSecret ? alertSecretUnchanged(current) : undefined))
    .returning({ id: merchants.id })
    .get();
  if (!written) throw new ApiError("conflict", `alert settings of merchant ${merchantId} were changed concurrently; try again`);
  // The edge limit lives in the credential directory: this isolate sees a new one at once, others within its refresh.
  if (input.rate_limits !== undefined) forgetWebhookCredentials({ shard });
  const merchant = presentMerchant(await findMerchant({ db, merchantId }), shard);
  return alertSecret?.secret ? { merchant, alert_signing_secret: alertSecret.secret } : { merchant };
}

/**
 * The alert secret a PATCH writes: a new one (shown once) when it leaves an alert URL set and none is stored (the URL
 * set now, or set before alerts had their own secret); none at all when it clears the URL. Else the secret stays.
 */
async function alertSecretChanges(config: AppConfig, current: MerchantRow, changes: Partial<typeof merchants.$inferInsert>) {
  if (changes.alertSettings === undefined) return undefined;
  const hadUrl = Boolean(current.alertSettings?.url);
  const hasUrl = Boolean(changes.alertSettings?.url);
  if (!hasUrl) return hadUrl || current.alertSecretCiphertext !== null ? { secret: null, columns: noAlertSecret } : undefined;
  if (current.alertSecretCiphertext !== null && hadUrl) return undefined;
  return issuedAlertSecret(config, current.id);
}

/** The Smart Router credentials a PATCH leaves the merchant with: each part given, or the current one. */
async function credentialsAfter(config: AppConfig, current: MerchantRow, given: NonNullable<UpdateMerchantInput["smart_router"]>) {
  return {
    projectId: given.project_id ?? current.smartRouterProjectId,
    secretKey: given.secret_key ?? (await smartRouterCredentials({ config, merchant: current })).secretKey,
  };
}

/** The columns a PATCH sets, from the fields it names; a new secret key is sealed here. */
async function merchantChanges(config: AppConfig, current: MerchantRow, input: UpdateMerchantInput) {
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
    const sealed = await sealSecret(config, input.smart_router.secret_key, secretContext.smartRouter(current.id));
    changes.smartRouterSecretCiphertext = sealed.ciphertext;
    changes.smartRouterSecretKeyId = sealed.keyId;
  }
  return changes;
}

/** Moves the merchant's project claim in the directory: another merchant that took the project since the check fails this. */
async function claimProject(directory: Database, merchantId: string, projectId: string) {
  try {
    await directory.update(merchantShards).set({ smartRouterProjectId: projectId }).where(eq(merchantShards.merchantId, merchantId));
  } catch (error) {
    throw uniqueConflict(error, merchantId, projectId);
  }
}

/**
 * Issues another API key on the merchant's shard (`db`, index `shard`); existing keys keep working until revoked. Its
 * directory row on DB is written first; should the key's own write fail, the row is removed (a row without its key
 * only ever answers 401).
 */
export async function issueApiKey({ db, directory, merchantId, shard }: KeyHolder) {
  await findMerchant({ db, merchantId });
  const key = await newApiKey({ db, directory, merchantId, shard });
  await key.listing;
  try {
    await key.insert;
  } catch (error) {
    await directory.delete(apiKeyDirectory).where(eq(apiKeyDirectory.keyId, key.keyId));
    throw error;
  }
  return { api_key: { id: key.keyId, key: key.apiKey } };
}

/** Revokes one key of the merchant (its directory row stays: the shard's row says revoked); another merchant's key id is a 404. */
export async function revokeApiKey({ db, merchantId, keyId }: { db: Database; merchantId: string; keyId: string }) {
  const revokedAt = new Date().toISOString();
  const revoked = await db
    .update(apiKeys)
    .set({ revokedAt })
    .where(and(eq(apiKeys.id, keyId), eq(apiKeys.merchantId, merchantId), isNull(apiKeys.revokedAt)))
    .returning({ id: apiKeys.id })
    .get();
  if (!revoked) throw new ApiError("not_found", `no active api key ${keyId} for merchant ${merchantId}`);
  return { api_key: { id: keyId, revoked_at: revokedAt } };
}

/** The merchant's Smart Router credentials, decrypted for one outbound call. */
export async function smartRouterCredentials({ config, merchant }: { config: AppConfig; merchant: MerchantRow }) {
  const secretKey = await openSecret(
    config,
    { ciphertext: merchant.smartRouterSecretCiphertext, keyId: merchant.smartRouterSecretKeyId },
    secretContext.smartRouter(merchant.id),
  );
  return { projectId: merchant.smartRouterProjectId, secretKey };
}
