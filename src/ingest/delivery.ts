import { z } from "zod";
import { eventIdSchema, eventTypeSchema } from "../queue/messages";

/** Smart Router's webhook body: only a reference to the event. Extra fields are tolerated and dropped. */
export const deliveryBodySchema = z.object({
  event_id: eventIdSchema,
  // A malformed optional name is not worth refusing a delivery over: the fetched event names itself.
  event_type: eventTypeSchema.nullable().catch(null),
});

/** Webhook bodies are tiny; anything over this is refused with 413. */
export const MAX_DELIVERY_BYTES = 64 * 1024;
