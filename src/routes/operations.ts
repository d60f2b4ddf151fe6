import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { merchantCache } from "../http/cache";
import { type MerchantContext, requireMerchantKey } from "../http/merchant-auth";
import { errors, json, security } from "../http/openapi";
import { limitPerApiKey } from "../http/status-rate-limit";
import { ADMIN_ACTOR_KEY } from "../merchants/api-keys";
import { merchantBudget } from "../operations/budget";
import { PIPELINE_WINDOW_MINUTES, pipelineSummary, webhookQueueMetrics } from "../operations/pipeline";
import { BUCKETS } from "../rate-limiter/limiter";
import { noQuery, strictQuery } from "../transactions/api-schemas";

const WINDOW_HINT = `window_minutes must be an integer from ${PIPELINE_WINDOW_MINUTES.min} to ${PIPELINE_WINDOW_MINUTES.max}`;

const pipelineQuery = strictQuery({
  window_minutes: z
    .string({ error: (issue) => (Array.isArray(issue.input) ? "window_minutes must be given once" : WINDOW_HINT) })
    .regex(/^[0-9]{1,4}$/, WINDOW_HINT)
    .transform(Number)
    .pipe(z.int().min(PIPELINE_WINDOW_MINUTES.min, WINDOW_HINT).max(PIPELINE_WINDOW_MINUTES.max, WINDOW_HINT))
    .optional()
    .openapi({
      type: "integer",
      minimum: PIPELINE_WINDOW_MINUTES.min,
      maximum: PIPELINE_WINDOW_MINUTES.max,
      default: PIPELINE_WINDOW_MINUTES.default,
      description: "How far back the window's counts go, in minutes.",
    }),
});

const count = z.int().min(0);
const isoOrNull = z.string().nullable().openapi({ format: "date-time" });

/** `GET /v1/pipeline`. */
export const pipelineResponse = z
  .object({
    pipeline: z.object({
      from: z.string().openapi({ format: "date-time" }),
      to: z.string().openapi({ format: "date-time" }),
      deliveries_per_minute: z
        .array(z.object({ minute: z.string().openapi({ format: "date-time" }), count }))
        .openapi({ description: "Webhook deliveries the edge accepted, per minute of the window (zeros included), oldest first." }),
      outcomes: z.object({ applied: count, stale: count, duplicate: count, rejected: count, pending: count, ignored: count }).openapi({
        description:
          "The window's deliveries by what became of them: `duplicate` when the event was already in the inbox, else its event's " +
          "outcome now (`rejected`: Smart Router does not know it, e.g. forged).",
      }),
      lag_ms: z.object({ p50: z.number().nullable(), p99: z.number().nullable() }).openapi({
        description:
          "From the edge's receipt to the start of the consumer batch that applied the event, over the window's newest 10,000; null without any.",
      }),
      waiting: z.object({
        pending_events: count.openapi({ description: "Inbox events not settled yet (now, not windowed)." }),
        retries_scheduled: count.openapi({
          description: "Of those, the ones whose last fetch-back failed, plus fulfilment notifications that failed and are tried again.",
        }),
      }),
      backlog: z
        .object({
          source: z.literal("inbox"),
          count,
          oldest_received_at: isoOrNull.openapi({ description: "When the edge accepted the oldest delivery still unsettled." }),
          oldest_age_seconds: z.int().min(0).nullable().openapi({ description: "How long it has waited, now; null without a backlog." }),
        })
        .openapi({
          description:
            "The merchant's own webhook backlog, read from its inbox (`source: inbox`): deliveries the consumer has taken in and not " +
            "settled yet (verified and applied, or found forged), and the age of the oldest. A delivery still in the queue before " +
            "its first consumer batch (about a second while the consumer keeps up) is not in it: the queue is shared by every " +
            "merchant, so its own metrics are service-wide (`webhook_queue`).",
        }),
      webhook_queue: z
        .object({
          backlog_count: count,
          backlog_bytes: count,
          oldest_message_at: isoOrNull,
          oldest_age_seconds: z.int().min(0).nullable(),
        })
        .nullable()
        .openapi({
          description:
            "The webhook queue as the Workers runtime reports it (`Queue.metrics()`): every merchant's messages waiting, so shown " +
            "only to the admin token (acting as a merchant); null for a merchant API key, or when the runtime cannot say.",
        }),
      dead_letters: count.openapi({ description: "The merchant's dead letters not redriven." }),
      backstop: z.object({
        watermark: isoOrNull.openapi({ description: "`fired_at` of the newest event the event-log backstop has covered." }),
        lag_seconds: z
          .int()
          .nullable()
          .openapi({ description: "How far behind now the watermark is (it also grows while no event fires)." }),
        last_run_at: isoOrNull,
      }),
      reconciliation: z
        .object({ last_run_at: isoOrNull, runs: count.openapi({ description: "Runs started in the window." }) })
        .openapi({ description: "Reconciliation runs of the service (they cover every merchant)." }),
    }),
  })
  .openapi("Pipeline");

/** `GET /v1/budget`. */
export const budgetResponse = z
  .object({
    budget: z.object({
      project_id: z.string(),
      buckets: z.array(
        z.object({
          bucket: z.enum(BUCKETS),
          rate_per_minute: z.number().openapi({ description: "Smart Router's rate for the bucket, as learned from `x-ratelimit`." }),
          tokens_left: count.openapi({ description: "Calls the interactive lane could make back to back now (at most the burst)." }),
          batch_rate_per_minute: z
            .number()
            .openapi({ description: "The batch lane's current rate: it starts slow and ramps to its share." }),
          batch_share: z.number().openapi({ description: "The share of the rate batch work may take at most." }),
          recent_429s: z
            .array(z.string().openapi({ format: "date-time" }))
            .openapi({ description: "The last 429s, oldest first (at most 20)." }),
        }),
      ),
      breaker: z.object({
        state: z.enum(["closed", "open", "half_open"]).openapi({ description: "`half_open`: a probe call is due and decides." }),
        since: isoOrNull.openapi({ description: "When it opened; null while closed." }),
      }),
    }),
  })
  .openapi("Budget");

const pipelineRoute = createRoute({
  method: "get",
  path: "/",
  summary: "The webhook pipeline",
  description:
    "Deliveries, their outcomes and lag over a window, what is waiting, the backlog and its age, dead letters, the backstop and reconciliation.",
  tags: ["Operations"],
  security,
  request: { query: pipelineQuery },
  responses: { 200: json(pipelineResponse, "The pipeline's figures."), ...errors },
});

const budgetRoute = createRoute({
  method: "get",
  path: "/",
  summary: "The Smart Router budget",
  description: "The project's rate-limit buckets and circuit breaker, as our pacer sees them now.",
  tags: ["Operations"],
  security,
  request: { query: noQuery },
  responses: { 200: json(budgetResponse, "The budget."), ...errors },
});

// Live figures of one merchant: never stored by any cache.
const live = merchantCache("no-store");

/** `/v1/pipeline`: the merchant's webhook pipeline. */
export const pipelineRoutes = new OpenAPIHono<MerchantContext>();
pipelineRoutes.use(requireMerchantKey(), limitPerApiKey(), live);
pipelineRoutes.openapi(pipelineRoute, async (c) => {
  const { window_minutes: windowMinutes = PIPELINE_WINDOW_MINUTES.default } = c.req.valid("query");
  const now = Date.now();
  const { pipeline } = await pipelineSummary({ db: c.var.db, merchantId: c.var.merchant.id, windowMinutes, now });
  // Every merchant's messages: the operator's figure, never a merchant key's.
  const operator = c.var.merchant.apiKeyId === ADMIN_ACTOR_KEY;
  const webhookQueue = operator ? await webhookQueueMetrics({ queue: c.env.WEBHOOKS, now }) : null;
  return c.json({ pipeline: { ...pipeline, webhook_queue: webhookQueue } }, 200);
});

/** `/v1/budget`: the merchant's Smart Router budget. */
export const budgetRoutes = new OpenAPIHono<MerchantContext>();
budgetRoutes.use(requireMerchantKey(), limitPerApiKey(), live);
budgetRoutes.openapi(budgetRoute, async (c) =>
  c.json(await merchantBudget({ db: c.var.db, env: c.env, merchantId: c.var.merchant.id }), 200),
);
