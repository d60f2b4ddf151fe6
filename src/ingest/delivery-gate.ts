import { DurableObject } from "cloudflare:workers";
import { ApiError } from "../errors";
import { log } from "../lib/log";
import {
  type Admission,
  admit as admitInto,
  BACKLOG_RETRY_AFTER_SECONDS,
  type BacklogState,
  backlogOf,
  minuteOf,
  newBacklog,
  settle as settleInto,
} from "./backlog";

/**
 * One per merchant (addressed by merchant id): counts the deliveries the edge admitted and the consumer has not yet
 * settled, and refuses new ones past the merchant's backlog limit (backlog.ts). The count is held in memory only: an
 * evicted gate starts from zero, which admits at most one more backlog, and a merchant under a flood keeps its gate busy,
 * hence alive. Each method runs without awaiting, so calls never interleave.
 */
export class DeliveryGate extends DurableObject {
  readonly #state: BacklogState = newBacklog();

  /** Counts one delivery received at `receivedAt` in, saying where it waits, unless `limit` deliveries already wait. */
  admit(limit: number, receivedAt: string): Admission {
    return admitInto(this.#state, limit, minuteOf(receivedAt), minuteOf(Date.now()));
  }

  /** Counts settled deliveries out, per minute of their `received_at`. */
  settle(counts: [minute: number, count: number][]): void {
    settleInto(this.#state, counts, minuteOf(Date.now()));
  }

  /** Deliveries waiting within the window (for the console and tests). */
  backlog(): number {
    return backlogOf(this.#state, minuteOf(Date.now()));
  }
}

const gateOf = (gates: DurableObjectNamespace<DeliveryGate>, merchantId: string) => gates.get(gates.idFromName(merchantId));

/**
 * Admits a delivery past its merchant's gate, answering where it waits (backlog.ts QUEUE_SHARE), or throws 429 +
 * Retry-After: the merchant's pipeline already holds more than it can verify soon, and Smart Router retries (the
 * event-log backstop finds anything it gives up on). A gate that fails admits to the queue: it only sheds floods, and
 * refusing everything on its failure would be worse.
 */
export async function admitDelivery(
  gates: DurableObjectNamespace<DeliveryGate>,
  merchantId: string,
  limit: number,
  receivedAt: string,
): Promise<"queue" | "park"> {
  let admission: Admission = "queue";
  try {
    admission = await gateOf(gates, merchantId).admit(limit, receivedAt);
  } catch (error) {
    log("warn", "webhook.gate_failed", { merchant_id: merchantId, error: error instanceof Error ? error.message : String(error) });
  }
  if (admission === "refuse") {
    throw new ApiError(
      "rate_limited",
      `too many deliveries of this merchant wait to be verified; retry after ${BACKLOG_RETRY_AFTER_SECONDS} seconds`,
      { "Retry-After": String(BACKLOG_RETRY_AFTER_SECONDS) },
    );
  }
  return admission;
}

/** One merchant's settled deliveries, by their `received_at`. */
export interface SettledDeliveries {
  merchantId: string;
  receivedAt: readonly string[];
}

/** Tells each merchant's gate which deliveries left its pipeline; best effort (a lost report heals within the window). */
export async function reportSettled(gates: DurableObjectNamespace<DeliveryGate>, settled: readonly SettledDeliveries[]) {
  await Promise.all(
    settled
      .filter(({ receivedAt }) => receivedAt.length > 0)
      .map(async ({ merchantId, receivedAt }) => {
        const counts = new Map<number, number>();
        for (const at of receivedAt) counts.set(minuteOf(at), (counts.get(minuteOf(at)) ?? 0) + 1);
        try {
          await gateOf(gates, merchantId).settle([...counts]);
        } catch (error) {
          log("warn", "webhooks.gate_report_failed", {
            merchant_id: merchantId,
            error: error instanceof Error ? error.message : String(error),
          });
        }
      }),
  );
}
