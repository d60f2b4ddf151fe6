import { createMiddleware } from "hono/factory";
import { ApiError } from "../errors";
import { log } from "../lib/log";
import type { MerchantContext } from "./merchant-auth";

/** What the status API needs of a limiter: the Workers Rate Limiting binding's one method, so tests can pass their own. */
export type StatusLimiter = Pick<RateLimit, "limit">;

/** The STATUS_API_LIMITER window in wrangler.toml (`simple.period`); a refused caller is told to wait one window. */
export const STATUS_API_WINDOW_SECONDS = 60;

/** Counts the request against its API key (not the merchant, so one runaway integration cannot starve the others); 429 past the limit. */
export const limitPerApiKey = () =>
  createMiddleware<MerchantContext>(async (c, next) => {
    let allowed = true;
    try {
      ({ success: allowed } = await c.var.statusLimiter.limit({ key: c.var.merchant.apiKeyId }));
    } catch (error) {
      // The limiter only shields us; when it fails, serving the read beats refusing it.
      log("warn", "status_api.rate_limiter_failed", {
        merchant_id: c.var.merchant.id,
        request_id: c.var.requestId,
        error: error instanceof Error ? error.message : String(error),
      });
    }
    if (!allowed) {
      throw new ApiError("rate_limited", `too many requests for this API key; retry after ${STATUS_API_WINDOW_SECONDS} seconds`, {
        "Retry-After": String(STATUS_API_WINDOW_SECONDS),
      });
    }
    await next();
  });
