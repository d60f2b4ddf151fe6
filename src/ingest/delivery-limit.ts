import { ApiError } from "../errors";
import { log } from "../lib/log";
import { DELIVERY_LIMIT_UNIT } from "../merchants/schemas";

/** What the edge needs of a limiter: the Workers Rate Limiting binding's one method, so tests can pass their own. */
export type DeliveryLimiter = Pick<RateLimit, "limit">;

/** The WEBHOOK_LIMITER window in wrangler.toml (`simple.period`); a refused sender is told to wait one window. */
export const DELIVERY_WINDOW_SECONDS = 60;
/** A merchant's edge limit unless `rate_limits.webhooks_rpm` says otherwise: far above any real Smart Router traffic. */
export const DEFAULT_DELIVERIES_PER_MINUTE = 6_000;

/**
 * Merchants whose rotation an isolate remembers (about 100 bytes each, so under 1 MB); past it the longest-remembered one
 * is forgotten and simply starts a fresh rotation, which costs nothing but evenness for a few deliveries.
 */
export const REMEMBERED_ROTATIONS = 10_000;

// Round robin over each merchant's own keys, per isolate: one shared counter let a merchant with few keys reset the turn
// of every other merchant, so a default-limit merchant kept landing on one or two of its keys.
const turns = new Map<string, number>();

/** The merchant's next key index in [0, keys): its own round robin, starting anywhere so isolates do not all begin on one key. */
function nextTurn(merchantId: string, keys: number): number {
  const previous = turns.get(merchantId);
  const turn = previous === undefined ? Math.floor(Math.random() * keys) : (previous + 1) % keys;
  // Re-inserted so the Map's order is least recently used first: the first key is the one to forget.
  turns.delete(merchantId);
  turns.set(merchantId, turn);
  if (turns.size > REMEMBERED_ROTATIONS) {
    const oldest = turns.keys().next();
    if (!oldest.done) turns.delete(oldest.value);
  }
  return turn;
}

/**
 * Counts an authenticated delivery against its merchant's edge limit; 429 past it, so a leaked credential cannot spend
 * the merchant's Smart Router quota on fetch-backs of forged ids. Smart Router retries a 429 later, so nothing genuine is
 * lost. The binding's limit is fixed per deployment, so a merchant's limit of N per minute is N / DELIVERY_LIMIT_UNIT
 * keys of it (`acme`, `acme#1`, …), taken in turn: configurable per merchant in steps of one unit, one call per delivery.
 */
export async function limitDeliveries(
  limiter: DeliveryLimiter,
  merchantId: string,
  perMinute = DEFAULT_DELIVERIES_PER_MINUTE,
): Promise<void> {
  const keys = Math.max(1, Math.ceil(perMinute / DELIVERY_LIMIT_UNIT));
  const turn = nextTurn(merchantId, keys);
  let allowed = true;
  try {
    ({ success: allowed } = await limiter.limit({ key: turn === 0 ? merchantId : `${merchantId}#${turn}` }));
  } catch (error) {
    // The limiter only shields the merchant's quota; when it fails, taking the delivery beats refusing it.
    log("warn", "webhook.rate_limiter_failed", { merchant_id: merchantId, error: error instanceof Error ? error.message : String(error) });
  }
  if (!allowed) {
    throw new ApiError("rate_limited", `too many deliveries for this merchant; retry after ${DELIVERY_WINDOW_SECONDS} seconds`, {
      "Retry-After": String(DELIVERY_WINDOW_SECONDS),
    });
  }
}
