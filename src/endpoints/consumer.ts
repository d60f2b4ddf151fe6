import type { Database } from "../db/client";
import { safeErrorText } from "../db/errors";
import type { AppConfig } from "../env";
import { mapConcurrent } from "../lib/concurrency";
import { log } from "../lib/log";
import type { ConsumerInput } from "../queue/consumer";
import { type EndpointLaneMessage, endpointLaneMessageV1 } from "../queue/messages";
import { STORAGE_WAIT_SECONDS } from "../queue/retry";
import { deliverLane, type LaneOutcome } from "./deliver";

/** Lanes delivered side by side per queue batch: transactions do not wait for each other. */
const LANES_IN_PARALLEL = 10;

/**
 * Consumes lane nudges: each sends its lane's due messages in order (endpoints/deliver.ts). A retry is a fresh nudge
 * delayed to the message's next attempt; more than one nudge's worth is a fresh nudge now. A nudge that fails (a D1
 * error, a secret that does not open) is retried by the queue; once its retries are spent it is dropped, and the cron
 * sweep nudges the lane again, since the message rows, not the nudges, hold what is owed.
 */
export async function consumeEndpointLanes({ batch, db, config, env }: ConsumerInput): Promise<void> {
  const lanes = new Map<string, { message: Message<unknown>; lane: EndpointLaneMessage }[]>();
  for (const message of batch.messages) {
    const parsed = endpointLaneMessageV1.safeParse(message.body);
    if (!parsed.success) {
      log("error", "endpoint.nudge_malformed", { id: message.id });
      message.ack();
      continue;
    }
    const key = `${parsed.data.endpoint_id}\u0000${parsed.data.transaction_id}`;
    lanes.set(key, [...(lanes.get(key) ?? []), { message, lane: parsed.data }]);
  }
  await mapConcurrent([...lanes.values()], LANES_IN_PARALLEL, async (nudges) => {
    const first = nudges[0];
    if (!first) return;
    const outcome = await deliverNudge({ db, config, lane: first.lane });
    if (outcome === null) {
      for (const { message } of nudges)
        message.retry({ delaySeconds: Math.max(1, Math.ceil(STORAGE_WAIT_SECONDS * config.RETRY_SCHEDULE_SCALE)) });
      return;
    }
    if (outcome.kind !== "idle") {
      // Lost, it is found again by the sweep: the due time is on the message row.
      await env.ENDPOINT_MESSAGES.send(first.lane, { delaySeconds: outcome.kind === "waiting" ? outcome.delaySeconds : 0 }).catch(
        (error: unknown) => {
          log("warn", "endpoint.nudge_failed", { endpoint_id: first.lane.endpoint_id, error: safeErrorText(error) });
        },
      );
    }
    for (const { message } of nudges) message.ack();
  });
}

/** One lane's delivery, logged; null when it failed on the way (its nudge is retried by the queue). */
async function deliverNudge({
  db,
  config,
  lane,
}: {
  db: Database;
  config: AppConfig;
  lane: EndpointLaneMessage;
}): Promise<LaneOutcome | null> {
  try {
    return await deliverLane({
      db,
      config,
      lane: { merchantId: lane.merchant_id, endpointId: lane.endpoint_id, transactionId: lane.transaction_id },
    });
  } catch (error) {
    log("warn", "endpoint.lane_failed", { merchant_id: lane.merchant_id, endpoint_id: lane.endpoint_id, error: safeErrorText(error) });
    return null;
  }
}
