import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { isMerchantFenced, isStorageError, safeErrorMessage } from "./db/errors";
import { directoryDatabase, forgetMerchantShards } from "./db/shards";
import { type AppEnv, appConfig } from "./env";
import { ApiError, type ErrorCode, errorBody } from "./errors";
import { accessLog } from "./http/access-log";
import type { AppContext } from "./http/context";
import type { StatusLimiter } from "./http/status-rate-limit";
import { type DeliveryQueue, queueFromBinding } from "./ingest/delivery-queue";
import { log } from "./lib/log";
import { adminRoutes } from "./routes/admin";
import { healthRoutes } from "./routes/health";
import { statusApiDocument, statusApiRoutes } from "./routes/v1";
import { webhookRoutes } from "./routes/webhooks";

/** What the app needs from outside, so tests can swap one part (e.g. a queue that refuses). */
export interface AppDependencies {
  deliveryQueue: (env: AppEnv) => DeliveryQueue;
  /** Per-API-key limiter of the status API; defaults to the STATUS_API_LIMITER binding. */
  statusLimiter?: (env: AppEnv) => StatusLimiter;
}

const STATUS_CODES: Partial<Record<number, ErrorCode>> = {
  400: "bad_request",
  401: "unauthorized",
  404: "not_found",
  413: "payload_too_large",
  429: "rate_limited",
  503: "service_unavailable",
};

/** The Retry-After of a request a failing D1 shard could not serve. */
const STORAGE_RETRY_AFTER_SECONDS = "30";

type OpenApiDocument = ReturnType<typeof statusApiDocument>;
let document: OpenApiDocument | undefined;

/**
 * The OpenAPI document of the status API and the admin API together (`GET /v1/openapi.json`, public). The routes are
 * fixed once the modules have loaded, so it is generated once per isolate.
 */
function apiDocument(): OpenApiDocument {
  if (document) return document;
  const status = statusApiDocument();
  const admin = adminRoutes.getOpenAPI31Document({ openapi: "3.1.0", info: status.info });
  const adminPaths = Object.fromEntries(
    Object.entries(admin.paths ?? {}).map(([path, item]) => [`/admin${path === "/" ? "" : path}`, item]),
  );
  document = {
    ...status,
    paths: { ...status.paths, ...adminPaths },
    components: {
      ...status.components,
      schemas: { ...admin.components?.schemas, ...status.components?.schemas },
      securitySchemes: { ...status.components?.securitySchemes, ...admin.components?.securitySchemes },
    },
  };
  return document;
}

/** Builds the Hono app: request id, lazy per-request context, one error handler, one sub-app per resource. */
export function createApp(dependencies: AppDependencies = { deliveryQueue: (env) => queueFromBinding(env.WEBHOOKS) }) {
  const app = new Hono<AppContext>();

  app.use(requestId({ headerName: "" }));
  app.use(accessLog);
  app.use(async (c, next) => {
    // /health must answer without touching bindings or configuration.
    if (c.req.path !== "/health") {
      c.set("config", appConfig(c.env));
      c.set("db", directoryDatabase(c.env));
      c.set("directoryDb", directoryDatabase(c.env));
      c.set("deliveryQueue", dependencies.deliveryQueue(c.env));
      c.set("statusLimiter", dependencies.statusLimiter?.(c.env) ?? c.env.STATUS_API_LIMITER);
    }
    await next();
  });

  app.route("/health", healthRoutes);
  app.route("/admin", adminRoutes);
  app.route("/webhooks", webhookRoutes);
  // statusApiRoutes carries its own `/v1` base path, so the OpenAPI document lists full paths.
  app.get("/v1/openapi.json", (c) => c.json(apiDocument()));
  app.route("/", statusApiRoutes);
  // `/docs` and `/console` are static assets (wrangler.toml `[assets]`, built from console/): they never reach this app.

  app.notFound((c) => c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`, c.var.requestId), 404));

  app.onError((error, c) => {
    const id = c.var.requestId ?? "unknown";
    if (error instanceof ApiError) {
      return c.json(errorBody(error.code, error.message, id), error.status, error.headers);
    }
    if (error instanceof HTTPException) {
      const code = STATUS_CODES[error.status] ?? "bad_request";
      return c.json(errorBody(code, error.message || code, id), error.status as ContentfulStatusCode);
    }
    // Logged without bodies or secrets: for a failed query, D1's own message, never drizzle's (it quotes bound values).
    const fields = { request_id: id, method: c.req.method, path: c.req.path, error: safeErrorMessage(error) };
    // A shard that errors (unreachable, unmigrated, full) fails only the requests that need it, with a 503 to retry.
    if (isMerchantFenced(error)) {
      // The merchant is switching shards (src/moves/): seconds, after which the directory names its new shard.
      forgetMerchantShards();
      log("warn", "request.merchant_fenced", fields);
      return c.json(errorBody("service_unavailable", "the merchant is moving between databases; retry shortly", id), 503, {
        "Retry-After": "5",
      });
    }
    if (isStorageError(error)) {
      log("error", "request.storage_failed", fields);
      return c.json(errorBody("service_unavailable", "storage is unavailable; retry later", id), 503, {
        "Retry-After": STORAGE_RETRY_AFTER_SECONDS,
      });
    }
    log("error", "request.failed", fields);
    return c.json(errorBody("internal_error", "internal error; quote the request_id when asking for help", id), 500);
  });

  return app;
}
