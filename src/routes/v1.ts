import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppContext } from "../http/context";
import { MERCHANT_API_KEY_SCHEME } from "../http/openapi";
import { validationHook } from "../http/validation";
import { alertRoutes } from "./alerts";
import { batchRoutes } from "./batches";
import { endpointRoutes } from "./endpoints";
import { exportRoutes } from "./export";
import { budgetRoutes, pipelineRoutes } from "./operations";
import { transactionRoutes } from "./transactions";

/** The status API under `/v1`: one OpenAPIHono sub-app per resource, mounted below, and the OpenAPI document of them all. */
export const statusApiRoutes = new OpenAPIHono<AppContext>({
  // Routes declare their params, query and body with zod; a failure becomes the service's error envelope (http/validation.ts).
  defaultHook: validationHook,
}).basePath("/v1");

statusApiRoutes.openAPIRegistry.registerComponent("securitySchemes", MERCHANT_API_KEY_SCHEME, {
  type: "http",
  scheme: "bearer",
  bearerFormat: "sre_<16 hex key id>_<43 base64url>",
  description:
    "A merchant API key issued by the admin API. The admin token (ADMIN_TOKEN) is accepted too, with header " +
    "`X-Merchant-Id: <merchant id>` naming the merchant it acts as (400 `bad_request` without it, 404 for an unknown merchant).",
});

// Each resource authenticates itself (`requireMerchantKey()` + `limitPerApiKey()`), so the document below stays public.
// Before /transactions, whose `/{id}` would otherwise take `export` for a transaction id.
statusApiRoutes.route("/transactions/export", exportRoutes);
statusApiRoutes.route("/transactions", transactionRoutes);
statusApiRoutes.route("/batches", batchRoutes);
statusApiRoutes.route("/pipeline", pipelineRoutes);
statusApiRoutes.route("/budget", budgetRoutes);
statusApiRoutes.route("/alerts", alertRoutes);
statusApiRoutes.route("/endpoints", endpointRoutes);

/** The status API's OpenAPI document (the app serves it merged with the admin API's at `/v1/openapi.json`). */
export function statusApiDocument() {
  return statusApiRoutes.getOpenAPI31Document({
    openapi: "3.1.0",
    info: {
      title: "Smart Router Edge API",
      version: "1.0.0",
      description:
        "Read the state of your ProcessOut Smart Router transactions as this service recorded them (`/v1`, with a merchant " +
        "API key), and operate the service (`/admin`, with the admin token). Authenticate with `Authorization: Bearer <key>`. " +
        'Errors are `{"error":{"code","message","request_id"}}`.',
    },
  });
}
