import { z } from "zod";
import { retryState } from "./retry";

/** The queues, by their exact names in wrangler.toml. */
export const QUEUES = {
  webhooks: "smart-router-webhooks",
  fulfillments: "smart-router-fulfillments",
  batches: "smart-router-batches",
  // No dead-letter queue: its nudges carry no state (the message rows do), and the cron sweep re-sends what was lost.
  endpointMessages: "smart-router-endpoint-messages",
} as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** Each queue's dead-letter queue (wrangler.toml `dead_letter_queue`). */
export const DEAD_LETTER_QUEUES = {
  webhooks: "smart-router-webhooks-dlq",
  fulfillments: "smart-router-fulfillments-dlq",
  batches: "smart-router-batches-dlq",
} as const;

/** Smart Router event ids: `ev_` and an opaque alphanumeric tail. */
export const eventIdSchema = z.string().regex(/^ev_[A-Za-z0-9]{1,64}$/, "must look like ev_… (letters and digits, at most 67 characters)");

/** Event names are dotted lower-case words; anything else is dropped rather than stored. */
export const eventTypeSchema = z
  .string()
  .max(128)
  .regex(/^[a-z0-9_.-]+$/, "must be a dotted event name");

/** Version 1 of a webhook delivery on the `smart-router-webhooks` queue. */
export const webhookMessageV1 = z.object({
  v: z.literal(1),
  merchant_id: z.string(),
  event_id: eventIdSchema,
  event_type: eventTypeSchema.nullable(),
  received_at: z.iso.datetime(),
  delivery_id: z.string(),
  /** Set on the one re-check of an event Smart Router did not know (404) at first; its delivery was counted then. */
  not_found_at: z.iso.datetime().optional(),
  ...retryState,
});

export type WebhookMessage = z.infer<typeof webhookMessageV1>;

/** Version 1 of a wake-up on the `smart-router-webhooks` queue: resume this merchant's parked deliveries (ingest/parking.ts). */
export const resumeParkedMessageV1 = z.object({ v: z.literal(1), kind: z.literal("resume_parked"), merchant_id: z.string() });
export type ResumeParkedMessage = z.infer<typeof resumeParkedMessageV1>;

/** Version 1 of a fulfilment nudge on the `smart-router-fulfillments` queue: deliver this outbox row's notification. */
export const fulfillmentMessageV1 = z.object({ v: z.literal(1), merchant_id: z.string(), transaction_id: z.string(), ...retryState });
export type FulfillmentMessage = z.infer<typeof fulfillmentMessageV1>;

/**
 * Version 1 of a lane nudge on the `smart-router-endpoint-messages` queue: send the next due messages of this
 * transaction to this endpoint, in order (src/endpoints/deliver.ts). Retry state lives on the message rows, not here.
 */
export const endpointLaneMessageV1 = z.object({
  v: z.literal(1),
  merchant_id: z.string(),
  endpoint_id: z.string(),
  transaction_id: z.string(),
});
export type EndpointLaneMessage = z.infer<typeof endpointLaneMessageV1>;

/** One page of a `sync` walk over `GET /transactions`, newest first. */
export const syncPageMessage = z.object({
  v: z.literal(1),
  kind: z.literal("sync_page"),
  /** Deterministic per unit of work, so a duplicated message is done once. */
  unit_id: z.string(),
  batch_id: z.string(),
  merchant_id: z.string(),
  start_after: z.string().nullable(),
  ...retryState,
});

/** Refresh of up to REFRESH_CHUNK transactions, for a batch or a reconciliation run. */
export const refreshMessage = z.object({
  v: z.literal(1),
  kind: z.literal("refresh"),
  unit_id: z.string(),
  batch_id: z.string().nullable(),
  run_id: z.string().nullable(),
  /** For reconciliation: the run's clock, recorded as the records' `reconciled_at`. */
  as_of: z.iso.datetime().optional(),
  merchant_id: z.string(),
  transaction_ids: z.array(z.string()).min(1),
  ...retryState,
});

/** One walk of one merchant's event log (the backstop, backstop/event-log.ts), queued by the Cron Trigger. */
export const eventLogMessage = z.object({
  v: z.literal(1),
  kind: z.literal("event_log"),
  merchant_id: z.string(),
  run_at: z.iso.datetime(),
  ...retryState,
});
export type EventLogMessage = z.infer<typeof eventLogMessage>;

/**
 * One page of a re-seal job (admin/reseal.ts) on one shard: the batch queue carries it, it makes no Smart Router call.
 * `shard`: the D1 shard whose merchants it re-seals (absent in messages from before shards: DB).
 */
export const resealMessage = z.object({
  v: z.literal(1),
  kind: z.literal("reseal"),
  job_id: z.string(),
  shard: z.number().int().min(0).optional(),
  ...retryState,
});

/** One page of an endpoint replay (src/endpoints/replay.ts): it resends stored messages and makes no Smart Router call. */
export const endpointReplayMessage = z.object({
  v: z.literal(1),
  kind: z.literal("endpoint_replay"),
  replay_id: z.string(),
  merchant_id: z.string(),
  ...retryState,
});
export type EndpointReplayMessage = z.infer<typeof endpointReplayMessage>;

/**
 * One step of a merchant's move between shards (src/moves/): `step` is the job's step it runs (a stale one is dropped).
 * `shard` is 0: the job lives on DB; the step opens the merchant's two shards itself.
 */
export const merchantMoveMessage = z.object({
  v: z.literal(1),
  kind: z.literal("merchant_move"),
  move_id: z.string(),
  step: z.number().int().min(0),
  shard: z.literal(0),
});
export type MerchantMoveMessage = z.infer<typeof merchantMoveMessage>;

export const batchMessage = z.discriminatedUnion("kind", [
  syncPageMessage,
  refreshMessage,
  eventLogMessage,
  resealMessage,
  endpointReplayMessage,
  merchantMoveMessage,
]);
export type BatchMessage = z.infer<typeof batchMessage>;
/** The batch-lane work that belongs to a batch or a reconciliation run and is counted as units. */
export type UnitMessage = Exclude<
  BatchMessage,
  EventLogMessage | z.infer<typeof resealMessage> | EndpointReplayMessage | MerchantMoveMessage
>;
export type RefreshMessage = z.infer<typeof refreshMessage>;

export const REFRESH_CHUNK = 20;

/** Splits ids into refresh-sized chunks. */
export function chunk<T>(items: readonly T[], size = REFRESH_CHUNK): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

/**
 * Where the rest of a refresh unit goes when it stops part-way: `<base>@<absolute offset>`, so a rest split again keeps
 * a short id (never `…/+0/+0/…`) and the same split point always gives the same id, whichever retry reaches it.
 */
export function restOf(work: RefreshMessage, done: number): RefreshMessage {
  const match = /^(.*?)(?:@(\d+))?$/.exec(work.unit_id);
  const base = match?.[1] ?? work.unit_id;
  const offset = Number(match?.[2] ?? 0) + done;
  const { attempt: _attempt, first_attempt_at: _first, ...rest } = work;
  return { ...rest, unit_id: `${base}@${offset}`, transaction_ids: work.transaction_ids.slice(done) };
}
