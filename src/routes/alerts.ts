import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { alertPageResponse, alertSchema, listAlertsQuery } from "../alerts/api-schemas";
import { acknowledgeAlert, listAlerts } from "../alerts/store";
import { merchantCache } from "../http/cache";
import { type MerchantContext, requireMerchantKey } from "../http/merchant-auth";
import { errors, json, security } from "../http/openapi";
import { limitPerApiKey } from "../http/status-rate-limit";
import { DEFAULT_PAGE_SIZE, errorResponse } from "../transactions/api-schemas";

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
