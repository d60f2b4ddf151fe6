import { Hono } from "hono";
import { shardAt, shardDatabases } from "../db/shards";
import { ApiError } from "../errors";
import { parseJsonBody } from "../http/body";
import type { AppContext } from "../http/context";
import { backlogLimit } from "../ingest/backlog";
import { deliveryBodySchema, MAX_DELIVERY_BYTES } from "../ingest/delivery";
import { admitDelivery, reportSettled } from "../ingest/delivery-gate";
import { limitDeliveries } from "../ingest/delivery-limit";
import { type HandedOver, handOver } from "../ingest/hand-over";
import { log } from "../lib/log";
import { authenticateDelivery } from "../merchants/credential-directory";

export const webhookRoutes = new Hono<AppContext>().post("/smart-router/:merchantId", async (c) => {
  const started = Date.now();
  const merchantId = c.req.param("merchantId");
  const deliveryId = c.var.requestId;
  const outcome = (result: string, fields: Record<string, unknown> = {}) =>
    log(result === "parked" ? "info" : "warn", "webhook.delivery", {
      request_id: deliveryId,
      merchant_id: merchantId.slice(0, 64),
      outcome: result,
      latency_ms: Date.now() - started,
      ...fields,
    });

  // Set once a refused queue has logged its own outcome.
  let queueRefused = false;
  try {
    const sender = await authenticateDelivery({ shards: shardDatabases(c.env), merchantId, authorization: c.req.header("authorization") });
    if (!sender) {
      throw new ApiError("unauthorized", "missing or invalid webhook credential", {
        "WWW-Authenticate": 'Basic realm="smart-router-webhooks"',
      });
    }
    // After the credential: only the merchant's own (or leaked) credential can spend its limits.
    await limitDeliveries(c.env.WEBHOOK_LIMITER, merchantId, sender.rateLimits?.webhooks_rpm);
    const body = await parseJsonBody(c.req.raw, deliveryBodySchema, MAX_DELIVERY_BYTES);
    const receivedAt = new Date().toISOString();
    const admission = await admitDelivery(c.env.DELIVERY_GATE, merchantId, backlogLimit(sender.projectId, sender.rateLimits), receivedAt);
    let handedOver: HandedOver;
    try {
      handedOver = await handOver({
        queue: c.var.deliveryQueue,
        db: shardAt(c.env, sender.shard).db,
        admission,
        message: {
          v: 1,
          merchant_id: merchantId,
          event_id: body.event_id,
          event_type: body.event_type,
          received_at: receivedAt,
          delivery_id: deliveryId,
        },
      });
    } catch (error) {
      queueRefused = true;
      await reportSettled(c.env.DELIVERY_GATE, [{ merchantId, receivedAt: [receivedAt] }]);
      outcome("queue_refused", { event_id: body.event_id, error: error instanceof Error ? error.message : String(error) });
      throw new ApiError("service_unavailable", "delivery could not be queued; retry later", { "Retry-After": "30" });
    }
    // An enqueued delivery logs no line (a log event is billed like ~0.6 D1 rows): its inbox row is the record of it
    // (the console's timeline and `GET /v1/pipeline`); a parked one, a refusal and every error still log theirs.
    if (handedOver === "parked") outcome(handedOver, { event_id: body.event_id, event_type: body.event_type });
    return c.json({ received: true }, 200);
  } catch (error) {
    if (error instanceof ApiError && !queueRefused) outcome(error.code);
    throw error;
  }
});
