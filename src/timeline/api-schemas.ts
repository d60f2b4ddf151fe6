import { z } from "@hono/zod-openapi";
import { FETCH_BACK_OUTCOMES, FULFILLMENT_ATTEMPT_ERRORS, FULFILLMENT_ATTEMPT_OUTCOMES } from "../db/schema";
import { FETCH_BACK_VIAS } from "../smart-router/fetch-back";

const at = z.string().openapi({ format: "date-time", description: "ISO 8601 UTC." });
const summary = z.string().openapi({ description: "One human sentence." });

const deliveryEntry = z
  .object({
    at: at.openapi({ description: "When the edge accepted the delivery." }),
    kind: z.literal("delivery"),
    summary,
    detail: z.object({
      event_id: z.string(),
      event_name: z.string().nullable(),
      delivery_id: z.string().openapi({ description: "The edge's request id for the delivery." }),
      duplicate: z.boolean().openapi({ description: "The event was already in the inbox when this delivery came." }),
    }),
  })
  .openapi("TimelineDelivery");

const fetchBackEntry = z
  .object({
    at: at.openapi({ description: "When Smart Router answered the fetch-back (or the call was given up)." }),
    kind: z.literal("fetch_back"),
    summary,
    detail: z.object({
      event_id: z.string(),
      outcome: z.enum(FETCH_BACK_OUTCOMES).openapi({
        description:
          "`verified`; `not_found` (asked again later, then rejected as forged); `rejected` (e.g. another project's event); " +
          "`retry` (Smart Router failed or our pacer postponed it: tried again later).",
      }),
      via: z.enum(FETCH_BACK_VIAS).openapi({
        description: "`events_list`: one `GET /events` page stood for it; `event`: `GET /events/{id}`; then `GET /transactions/{id}` too.",
      }),
      api_calls: z.int(),
      pace_wait_ms: z.int().openapi({ description: "How long our own pacer held its calls back (waited, or postponed them by)." }),
      error: z.string().nullable().openapi({ description: "Why it did not verify; null when it did." }),
    }),
  })
  .openapi("TimelineFetchBack");

const stateChangeEntry = z
  .object({
    at: at.openapi({ description: "When the change was committed (the record's `updated_at`)." }),
    kind: z.literal("state_change"),
    summary,
    detail: z.object({
      from: z.string().nullable().openapi({ description: "The previous status; null for the first status seen." }),
      to: z.string(),
      cause: z.discriminatedUnion("kind", [
        z.object({ kind: z.literal("event"), event_id: z.string(), event_name: z.string().nullable() }),
        z.object({
          kind: z.literal("read"),
          read_at: z.string().nullable().openapi({ description: "A lower bound of the read's time on Smart Router's clock." }),
        }),
      ]),
    }),
  })
  .openapi("TimelineStateChange");

const fulfillmentAttemptEntry = z
  .object({
    at: at.openapi({ description: "When the attempt was made." }),
    kind: z.literal("fulfillment_attempt"),
    summary,
    detail: z.object({
      attempt: z.int(),
      outcome: z.enum(FULFILLMENT_ATTEMPT_OUTCOMES),
      http_status: z.int().nullable().openapi({ description: "The merchant's HTTP status; null when no answer came." }),
      error_class: z
        .enum(FULFILLMENT_ATTEMPT_ERRORS)
        .nullable()
        .openapi({ description: "Why it failed; null when delivered. The merchant's answer body is never kept." }),
    }),
  })
  .openapi("TimelineFulfillmentAttempt");

/** `GET /v1/transactions/{id}/timeline`. */
export const timelineResponse = z
  .object({
    timeline: z.array(z.discriminatedUnion("kind", [deliveryEntry, fetchBackEntry, stateChangeEntry, fulfillmentAttemptEntry])).openapi({
      description: "Oldest first; entries at the same instant in the order delivery, fetch_back, state_change, fulfillment_attempt.",
    }),
  })
  .openapi("Timeline");
