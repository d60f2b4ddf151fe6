import { createMiddleware } from "hono/factory";
import { auditTarget } from "../audit/audit";
import { databaseFor, rememberShard, shardAt, shardDatabases } from "../db/shards";
import { ApiError } from "../errors";
import { type ApiKeyHolder, authenticateApiKey, merchantForAdmin } from "../merchants/api-keys";
import { merchantIdSchema } from "../merchants/schemas";
import {
  type AuditVariables,
  auditAdminActions,
  bearerToken,
  matchAdminToken,
  noteAdminAction,
  notePreviousAdminToken,
} from "./admin-auth";
import type { AppContext } from "./context";

/** Context of routes behind `requireMerchantKey()`. */
export type MerchantContext = {
  Bindings: AppContext["Bindings"];
  /** `merchant`: the merchant and key the request authenticated as. */
  Variables: AppContext["Variables"] & AuditVariables & { merchant: ApiKeyHolder };
};

/** The header naming the merchant the admin token acts as. */
export const MERCHANT_ID_HEADER = "x-merchant-id";

const READS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Requires `Authorization: Bearer sre_…` (merchants/api-keys.ts): unknown, revoked and malformed keys get the same 401.
 * The admin token (ADMIN_TOKEN or ADMIN_TOKEN_PREVIOUS, compared as `requireAdmin` does) acts as the merchant named by
 * `X-Merchant-Id` (400 without it, 404 for an unknown merchant), which only the admin token may name: with an API key
 * the key alone decides. The admin token's writes are recorded in the admin audit; its reads are not. From here on
 * `c.var.db` is the merchant's shard (src/db/shards.ts); the audit stays on `c.var.directoryDb`.
 */
export const requireMerchantKey = () =>
  createMiddleware<MerchantContext>(async (c, next) => {
    const presented = bearerToken(c.req.header("authorization"));
    const admin = await matchAdminToken(c.var.config, presented);
    if (admin === null) {
      const found = await authenticateApiKey({ directory: c.var.directoryDb, shards: shardDatabases(c.env), presented });
      if (!found) {
        throw new ApiError("unauthorized", "missing, invalid or revoked API key", { "WWW-Authenticate": 'Bearer realm="status-api"' });
      }
      // The key's directory row named the shard: no second directory read for the merchant's.
      rememberShard(found.holder.id, found.shard);
      c.set("merchant", found.holder);
      c.set("db", shardAt(c.env, found.shard).db);
      await next();
      return;
    }

    if (admin === "previous") notePreviousAdminToken(c.var.requestId, c.req.path);
    const named = c.req.header(MERCHANT_ID_HEADER);
    if (named === undefined || named === "") {
      throw new ApiError("bad_request", "X-Merchant-Id is required with the admin token: name the merchant to act as");
    }
    const merchantId = merchantIdSchema.safeParse(named);
    if (!merchantId.success) throw new ApiError("bad_request", `X-Merchant-Id ${merchantId.error.issues[0]?.message ?? "is malformed"}`);
    const db = await databaseFor(c.env, merchantId.data);
    const merchant = await merchantForAdmin({ db, merchantId: merchantId.data });
    c.set("merchant", merchant);
    c.set("db", db);
    await auditAdminActions(c, async () => {
      await next();
      // Only a write that succeeded changed anything.
      if (!READS.has(c.req.method) && c.res.status < 400) {
        noteAdminAction(c, "status_api.write", [auditTarget.statusApi(merchant.id, c.req.method, c.req.path)]);
      }
    });
  });
