import { z } from "zod";
import { retryState } from "./retry";

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
