import { and, desc, eq, isNull, type SQL } from "drizzle-orm";
import { inList } from "../db/bulk";
import type { Database } from "../db/client";
import { deadLetters, fulfillments } from "../db/schema";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";

/** Dead letters not yet redriven, newest first, optionally for one merchant. */
export async function listDeadLetters(db: Database, merchantId: string | undefined, limit = 100) {
  const conditions: SQL[] = [isNull(deadLetters.redrivenAt)];
  if (merchantId) conditions.push(eq(deadLetters.merchantId, merchantId));
  const rows = await db
    .select()
    .from(deadLetters)
    .where(and(...conditions))
    .orderBy(desc(deadLetters.createdAt), desc(deadLetters.id))
    .limit(limit);
  return rows.map((row) => ({
    id: row.id,
    queue: row.queue,
    merchant_id: row.merchantId,
    body: row.body,
    error: row.error,
    attempts: row.attempts,
    created_at: row.createdAt,
  }));
}

/** Sends dead letters back through their queue and marks them redriven; a fulfilment goes back to pending first. */
export async function redriveDeadLetters(db: Database, env: AppEnv, selection: { ids?: string[]; merchant?: string }) {
  const conditions: SQL[] = [isNull(deadLetters.redrivenAt)];
  if (selection.ids) conditions.push(inList(deadLetters.id, selection.ids));
  if (selection.merchant) conditions.push(eq(deadLetters.merchantId, selection.merchant));
  const rows = await db
    .select()
    .from(deadLetters)
    .where(and(...conditions))
    .limit(100);
  const queues: Record<string, Queue> = {
    "smart-router-webhooks": env.WEBHOOKS,
    "smart-router-fulfillments": env.FULFILLMENTS,
    "smart-router-batches": env.BATCHES,
  };
  const redriven: string[] = [];
  const skipped: { id: string; reason: string }[] = [];
  for (const row of rows) {
    const queue = queues[row.queue];
    if (!queue) {
      skipped.push({ id: row.id, reason: `no queue ${row.queue}` });
      continue;
    }
    const body = row.body as Record<string, unknown>;
    if (row.queue === "smart-router-fulfillments" && typeof body.merchant_id === "string" && typeof body.transaction_id === "string") {
      await db
        .update(fulfillments)
        .set({ status: "pending", leaseUntil: null })
        .where(
          and(
            eq(fulfillments.merchantId, body.merchant_id),
            eq(fulfillments.transactionId, body.transaction_id),
            eq(fulfillments.status, "failed"),
          ),
        );
    }
    try {
      await queue.send(row.body, { contentType: "json" });
    } catch {
      throw new ApiError("service_unavailable", `queue refused the redrive of ${row.id}; nothing after it was sent`, {
        "Retry-After": "30",
      });
    }
    await db.update(deadLetters).set({ redrivenAt: new Date().toISOString() }).where(eq(deadLetters.id, row.id));
    redriven.push(row.id);
  }
  return { redriven, skipped };
}
