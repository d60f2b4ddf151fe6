import type { Database } from "../db/client";
import type { AppEnv } from "../env";
import { findMerchant } from "../merchants/merchants";
import { budgetOf } from "../rate-limiter/client";

/** Rates are requests per minute; two decimals are plenty to watch the batch lane ramp. */
const round = (value: number) => Math.round(value * 100) / 100;

/**
 * The merchant's Smart Router budget, read from its project's rate-limiter Durable Object without spending anything:
 * per bucket the rate, interactive tokens left now, the batch lane's current rate as it ramps and its share, and the
 * last 429s; and the project's circuit breaker.
 */
export async function merchantBudget({ db, env, merchantId }: { db: Database; env: AppEnv; merchantId: string }) {
  const merchant = await findMerchant({ db, merchantId });
  const budget = await budgetOf(env, merchant.smartRouterProjectId, merchant.rateLimits ?? null);
  return {
    budget: {
      project_id: merchant.smartRouterProjectId,
      buckets: budget.buckets.map((bucket) => ({
        bucket: bucket.bucket,
        rate_per_minute: round(bucket.ratePerMinute),
        tokens_left: bucket.tokensLeft,
        batch_rate_per_minute: round(bucket.batchRatePerMinute),
        batch_share: bucket.batchShare,
        recent_429s: bucket.recent429s,
      })),
      breaker: budget.breaker,
    },
  };
}
