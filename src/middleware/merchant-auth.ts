import { createMiddleware } from "hono/factory";
import type { AppContext } from "../app";
import { ApiError } from "../errors";
import { type ApiKeyHolder, authenticateApiKey } from "../merchants/api-keys";

/** Context of routes behind `requireMerchantKey()`. */
export type MerchantContext = {
  Bindings: AppContext["Bindings"];
  /** `merchant`: the merchant and key the request authenticated as. */
  Variables: AppContext["Variables"] & { merchant: ApiKeyHolder };
};

/** Requires `Authorization: Bearer sre_…` (merchants/api-keys.ts); unknown, revoked and malformed keys get the same 401. */
export const requireMerchantKey = () =>
  createMiddleware<MerchantContext>(async (c, next) => {
    const presented = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "")?.[1] ?? "";
    const merchant = await authenticateApiKey(c.var.db, presented);
    if (!merchant) {
      throw new ApiError("unauthorized", "missing, invalid or revoked API key", { "WWW-Authenticate": 'Bearer realm="status-api"' });
    }
    c.set("merchant", merchant);
    await next();
  });
