import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { ALERT_KINDS } from "../alerts/rules";
import { ALERT_LIST_STATES, acknowledgeAlert, listAlerts } from "../alerts/store";
import { ALERT_STATES } from "../db/schema";
import { merchantCache } from "../http/cache";
import { type MerchantContext, requireMerchantKey } from "../http/merchant-auth";
import { errors, json, security } from "../http/openapi";
import { limitPerApiKey } from "../http/status-rate-limit";
import { DEFAULT_PAGE_SIZE, errorResponse, listTransactionsQuery, strictQuery } from "../transactions/api-schemas";

const STATE_HINT = `state must be one of: ${ALERT_LIST_STATES.join(", ")}`;

/** Query of `GET /v1/alerts`: `limit` and `cursor` follow the rules of the transactions list. */
const listAlertsQuery = strictQuery({
  state: z
    // A repeated key arrives as an array, which gets its own message.
    .enum(ALERT_LIST_STATES, { error: (issue) => (Array.isArray(issue.input) ? "state must be given once" : STATE_HINT) })
    .optional()
    .openapi({ description: "`open` (the default): alerts whose condition still holds; `all`: resolved ones too." }),
  limit: listTransactionsQuery.shape.limit,
  cursor: listTransactionsQuery.shape.cursor,
});

const timestamp = z.string().openapi({ format: "date-time" });

const alertSchema = z
  .object({
    id: z.string().openapi({ example: "al_0f8e2b7c4d5a4b8c9e1f2a3b4c5d6e7f" }),
    kind: z.string().openapi({
      description:
        `One of ${ALERT_KINDS.join(", ")}. Per transaction: authorized and not captured for the merchant's hours; an APM ` +
        "payment pending for its minutes; refunded more than captured; a dispute opened on a payment whose fulfilment was " +
        "delivered. Per merchant (`transaction_id` null): forged webhook deliveries over its hourly threshold; Smart Router " +
        "refusing its secret key; fulfilment notifications failing for its minutes.",
      example: "authorized_not_captured",
    }),
    state: z.enum(ALERT_STATES).openapi({ description: "`open` while the condition holds; `resolved` once a check found it cleared." }),
    transaction_id: z.string().nullable(),
    opened_at: timestamp,
    resolved_at: timestamp.nullable(),
    acknowledged_at: timestamp.nullable().openapi({
      description: "When the merchant acknowledged the alert (`POST /v1/alerts/{id}/acknowledge`), which resolved it; null otherwise.",
    }),
    detail: z.string().openapi({ description: "What was found and what to do, in one sentence; its figures are as of the last check." }),
  })
  .openapi("Alert");

const alertPageResponse = z
  .object({
    alerts: z.array(alertSchema).openapi({ description: "Most recently opened first; ties broken by id, descending." }),
    next_cursor: z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last page." }),
  })
  .openapi("AlertPage");

const listAlertsRoute = createRoute({
  method: "get",
  path: "/",
  summary: "List business alerts",
  description:
    "Alerts the scheduled checks raised for the merchant (every 5 minutes, thresholds set per merchant by the admin API). " +
    "At most one alert is open per kind and transaction; it resolves when a later check finds the condition cleared.",
  tags: ["Alerts"],
  security,
  request: { query: listAlertsQuery },
  responses: { 200: json(alertPageResponse, "One page of alerts."), ...errors },
});

const alertIdParams = z.object({
  id: z
    .string()
    .min(1)
    .max(64)
    .openapi({ param: { name: "id", in: "path" }, example: "al_0f8e2b7c4d5a4b8c9e1f2a3b4c5d6e7f" }),
});

const acknowledgeAlertRoute = createRoute({
  method: "post",
  path: "/{id}/acknowledge",
  summary: "Acknowledge a fulfillment_failing alert",
  description:
    "A `fulfillment_failing` alert stays open while a fulfilment notification is given up for good (dead-lettered), until it is " +
    "delivered by a redrive or the merchant acknowledges it here: every notification given up until now counts as handled and " +
    "the alert resolves. Notifications still being retried keep the condition (a later check opens a new alert). Acknowledging " +
    "again answers the alert unchanged.",
  tags: ["Alerts"],
  security,
  request: { params: alertIdParams },
  responses: {
    200: json(z.object({ alert: alertSchema }).openapi("AlertResponse"), "The alert, resolved and acknowledged."),
    ...errors,
    404: json(errorResponse, "`not_found`: no such alert for this merchant (another merchant's alert included)."),
    409: json(errorResponse, "`conflict`: not a `fulfillment_failing` alert, or it resolved by itself."),
  },
});

/** `/v1/alerts`: the merchant's own business alerts; `fulfillment_failing` ones are acknowledged. */
export const alertRoutes = new OpenAPIHono<MerchantContext>();

// Alerts name a customer's payment (its id, amounts, status, dispute) and failing endpoints' errors: no cache keeps them.
alertRoutes.use(requireMerchantKey(), limitPerApiKey(), merchantCache("no-store"));

alertRoutes.openapi(listAlertsRoute, async (c) => {
  const { limit = DEFAULT_PAGE_SIZE, ...query } = c.req.valid("query");
  return c.json(await listAlerts({ db: c.var.db, merchantId: c.var.merchant.id, query: { ...query, limit } }), 200);
});

alertRoutes.openapi(acknowledgeAlertRoute, async (c) => {
  const alert = await acknowledgeAlert({ db: c.var.db, merchantId: c.var.merchant.id, alertId: c.req.valid("param").id, now: Date.now() });
  return c.json({ alert }, 200);
});
