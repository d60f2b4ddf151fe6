import type { Database } from "../db/client";
import type { AppEnv } from "../env";
import { sendAll } from "../queue/send";
import { markStalledFulfillments } from "./outbox";

const NUDGE_GRACE_MS = 2 * 60_000;
/** A resent nudge whose row is still never attempted this long after is taken for lost again and resent. */
const NUDGE_RESEND_AFTER_MS = 10 * 60_000;
const NUDGES_PER_RUN = 100;

/**
 * Re-sends fulfilment nudges for outbox rows never attempted well after they were requested (a nudge lost after commit),
 * oldest request first. A resent row is marked with `lease_until` = the run's time (a lease already over, so the consumer
 * still claims it) and left alone for NUDGE_RESEND_AFTER_MS; a resent nudge lost again is resent then, and so on every
 * NUDGE_RESEND_AFTER_MS until the row's first attempt, after which the fulfilment queue's retries and its dead-letter
 * queue own it. That first attempt (or the row leaving `pending`) is where the resending ends.
 */
export async function resendStalledFulfillments({ env, db, now }: { env: AppEnv; db: Database; now: number }): Promise<number> {
  // Marked before the send, in one statement: an overlapping run cannot resend the same rows, and a failed send fails the
  // run while its rows come round again NUDGE_RESEND_AFTER_MS later.
  const marked = await markStalledFulfillments({
    db,
    now,
    requestedBefore: now - NUDGE_GRACE_MS,
    markedBefore: now - NUDGE_RESEND_AFTER_MS,
    limit: NUDGES_PER_RUN,
  });
  await sendAll(
    env.FULFILLMENTS,
    marked.map((row) => ({ v: 1, merchant_id: row.merchantId, transaction_id: row.transactionId })),
  );
  return marked.length;
}
