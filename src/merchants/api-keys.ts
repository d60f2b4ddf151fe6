import { eq } from "drizzle-orm";
import type { Database } from "../db/client";
import { apiKeys, merchants } from "../db/schema";
import { ApiError } from "../errors";
import { apiKeyId, matchesHash } from "../security/credentials";
import type { MerchantScope } from "../transactions/queries";

/** The merchant an API key belongs to, as the status API scopes its reads, and the key's id. */
export interface ApiKeyHolder extends MerchantScope {
  apiKeyId: string;
}

// Compared against when the key id is unknown (or the key malformed), so every rejection costs one hash and one comparison.
const ABSENT_KEY_HASH = "0".repeat(64);

/**
 * Authenticates a presented API key: looks it up by its id part on every shard (a key lives with its merchant; every
 * presented key costs the same lookups), compares the SHA-256 of the whole key in constant time, refuses revoked keys.
 * Unknown, revoked and malformed keys all answer null.
 */
export async function authenticateApiKey({
  shards,
  presented,
}: {
  shards: readonly Database[];
  presented: string;
}): Promise<ApiKeyHolder | null> {
  const keyId = apiKeyId(presented);
  const found = keyId
    ? await Promise.all(
        shards.map((db) =>
          db
            .select({
              merchantId: apiKeys.merchantId,
              keyHash: apiKeys.keyHash,
              revokedAt: apiKeys.revokedAt,
              fulfillmentUrl: merchants.fulfillmentUrl,
            })
            .from(apiKeys)
            .innerJoin(merchants, eq(merchants.id, apiKeys.merchantId))
            .where(eq(apiKeys.id, keyId))
            .get(),
        ),
      )
    : [];
  const row = found.find((candidate) => candidate !== undefined);
  const matches = await matchesHash(presented, row?.keyHash ?? ABSENT_KEY_HASH);
  if (!row || !keyId || !matches || row.revokedAt !== null) return null;
  return { id: row.merchantId, apiKeyId: keyId, fulfillmentConfigured: row.fulfillmentUrl !== null };
}

/** The key the admin token is counted under when it acts as a merchant (the status API limits per key). */
export const ADMIN_ACTOR_KEY = "admin";

/** The merchant the admin token acts as (`X-Merchant-Id` on the status API); an unknown merchant is a 404. */
export async function merchantForAdmin({ db, merchantId }: { db: Database; merchantId: string }): Promise<ApiKeyHolder> {
  const row = await db
    .select({ id: merchants.id, fulfillmentUrl: merchants.fulfillmentUrl })
    .from(merchants)
    .where(eq(merchants.id, merchantId))
    .get();
  if (!row) throw new ApiError("not_found", `merchant ${merchantId} not found`);
  return { id: row.id, apiKeyId: ADMIN_ACTOR_KEY, fulfillmentConfigured: row.fulfillmentUrl !== null };
}
