import { ApiError } from "../errors";
import { log } from "../lib/log";

/** What the edge needs of a limiter: the Workers Rate Limiting binding's one method, so tests can pass their own. */
export type DeliveryLimiter = Pick<RateLimit, "limit">;

/** The WEBHOOK_LIMITER window in wrangler.toml (`simple.period`); a refused sender is told to wait one window. */
export const DELIVERY_WINDOW_SECONDS = 60;

/**
 * Counts an authenticated delivery against its merchant; 429 past the limit, so a leaked credential cannot spend the
 * merchant's Smart Router quota on fetch-backs of forged ids. Smart Router retries a 429 later, so nothing genuine is lost.
 */
export async function limitDeliveries(limiter: DeliveryLimiter, merchantId: string): Promise<void> {
  let allowed = true;
  try {
    ({ success: allowed } = await limiter.limit({ key: merchantId }));
  } catch (error) {
    // The limiter only shields the merchant's quota; when it fails, taking the delivery beats refusing it.
    log("warn", "webhook.rate_limiter_failed", { error: error instanceof Error ? error.message : String(error) });
  }
  if (!allowed) {
    throw new ApiError("rate_limited", `too many deliveries for this merchant; retry after ${DELIVERY_WINDOW_SECONDS} seconds`, {
      "Retry-After": String(DELIVERY_WINDOW_SECONDS),
    });
  }
}
