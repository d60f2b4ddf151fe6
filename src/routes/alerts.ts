import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { alertPageResponse, listAlertsQuery } from "../alerts/api-schemas";
import { listAlerts } from "../alerts/store";
import { merchantCache } from "../http/cache";
import { type MerchantContext, requireMerchantKey } from "../http/merchant-auth";
import { errors, json, security } from "../http/openapi";
import { limitPerApiKey } from "../http/status-rate-limit";
import { DEFAULT_PAGE_SIZE } from "../transactions/api-schemas";

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

/** `/v1/alerts`: the merchant's own business alerts, read-only. */
export const alertRoutes = new OpenAPIHono<MerchantContext>();

// Alerts name a customer's payment (its id, amounts, status, dispute) and failing endpoints' errors: no cache keeps them.
alertRoutes.use(requireMerchantKey(), limitPerApiKey(), merchantCache("no-store"));

alertRoutes.openapi(listAlertsRoute, async (c) => {
  const { limit = DEFAULT_PAGE_SIZE, ...query } = c.req.valid("query");
  return c.json(await listAlerts({ db: c.var.db, merchantId: c.var.merchant.id, query: { ...query, limit } }), 200);
});
