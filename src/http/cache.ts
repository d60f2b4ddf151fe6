import { createMiddleware } from "hono/factory";

/**
 * `no-store`: never written to any cache, a browser's disk included: answers carrying a customer's personal or payment data
 * (transaction records, operations, timelines, exports, alerts about a payment) and live figures. `no-cache`: kept, but
 * revalidated on every use (ETag): answers without such data.
 */
export type MerchantCachePolicy = "no-cache" | "no-store";

/**
 * The cache headers of every answer about one merchant: `private`, so no shared cache keeps it, and `Vary` on both the
 * credential and the merchant the admin token names (http/merchant-auth.ts), since either changes the answer.
 */
export function merchantCacheHeaders(policy: MerchantCachePolicy) {
  return { "Cache-Control": `private, ${policy}`, Vary: "Authorization, X-Merchant-Id" };
}

/** Sets `merchantCacheHeaders(policy)` on every answer of the routes it guards. */
export const merchantCache = (policy: MerchantCachePolicy) =>
  createMiddleware(async (c, next) => {
    for (const [name, value] of Object.entries(merchantCacheHeaders(policy))) c.header(name, value);
    await next();
  });
