import { eq } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import type { AppContext } from "../app";
import { apiKeys, merchants } from "../db/schema";
import { ApiError } from "../errors";
import { apiKeyId, matchesHash } from "../security/credentials";
import type { MerchantScope } from "../transactions/queries";

/** The merchant and key a status API request authenticated as. */
export interface AuthenticatedMerchant extends MerchantScope {
  apiKeyId: string;
}

/** Context of routes behind `requireMerchantKey()`. */
export type MerchantContext = {
  Bindings: AppContext["Bindings"];
  Variables: AppContext["Variables"] & { merchant: AuthenticatedMerchant };
};

// Compared against when the key id is unknown (or the key malformed), so every rejection costs one hash and one comparison.
const ABSENT_KEY_HASH = "0".repeat(64);

/**
 * Requires `Authorization: Bearer sre_…`: looks the key up by its id part, compares the SHA-256 of the whole key in
 * constant time, refuses revoked keys. Unknown, revoked and malformed keys get the same 401.
 */
export const requireMerchantKey = () =>
  createMiddleware<MerchantContext>(async (c, next) => {
    const presented = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "")?.[1] ?? "";
    const keyId = apiKeyId(presented);
    const row = keyId
      ? await c.var.db
          .select({
            merchantId: apiKeys.merchantId,
            keyHash: apiKeys.keyHash,
            revokedAt: apiKeys.revokedAt,
            fulfillmentUrl: merchants.fulfillmentUrl,
          })
          .from(apiKeys)
          .innerJoin(merchants, eq(merchants.id, apiKeys.merchantId))
          .where(eq(apiKeys.id, keyId))
          .get()
      : undefined;
    const matches = await matchesHash(presented, row?.keyHash ?? ABSENT_KEY_HASH);
    if (!row || !keyId || !matches || row.revokedAt !== null) {
      throw new ApiError("unauthorized", "missing, invalid or revoked API key", { "WWW-Authenticate": 'Bearer realm="status-api"' });
    }
    c.set("merchant", { id: row.merchantId, apiKeyId: keyId, fulfillmentConfigured: row.fulfillmentUrl !== null });
    await next();
  });
