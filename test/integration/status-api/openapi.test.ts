import type { z } from "@hono/zod-openapi";
import { beforeAll, describe, expect, it } from "vitest";
import { ERROR_CODES } from "../../../src/errors";
import { adminRoutes } from "../../../src/routes/admin";
import { statusApiRoutes } from "../../../src/routes/v1";
import { TRANSACTION_STATUSES } from "../../../src/smart-router/status";
import {
  errorResponse,
  eventsResponse,
  operationsResponse,
  transactionPageResponse,
  transactionResponse,
} from "../../../src/transactions/api-schemas";
import { call, createMerchant } from "../../support/fixtures";
import {
  appWithStatusLimiter,
  getWithKey,
  seedEvent,
  seedFulfillment,
  seedOperation,
  seedTransaction,
  seedTransactions,
  transactionRow,
} from "../../support/status-api";

interface Operation {
  parameters?: { name: string; in: string; required?: boolean; schema?: Record<string, unknown> }[];
  security?: Record<string, string[]>[];
  responses: Record<string, { description: string; content?: Record<string, { schema: { $ref?: string } }>; headers?: object }>;
}

interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: {
    schemas: Record<string, { properties?: Record<string, { properties?: Record<string, { enum?: string[] }> }> }>;
    securitySchemes: Record<string, { type: string; scheme?: string }>;
  };
}

/** Every route a router serves, in OpenAPI path syntax, read from the router itself (so new routes are checked too). */
function servedRoutes(routes: readonly { method: string; path: string }[] = statusApiRoutes.routes, prefix = ""): string[] {
  const served = routes
    .filter((route) => route.method !== "ALL" && route.path !== "/v1/openapi.json")
    .map((route) => `${route.method.toLowerCase()} ${prefix}${route.path.replace(/\/$/, "").replaceAll(/:([^/]+)/g, "{$1}")}`);
  return [...new Set(served)].sort();
}

/** The documented operations under a path prefix. */
const operationsUnder = (doc: OpenApiDocument, prefix: string) =>
  Object.entries(doc.paths).filter(([path]) => path === prefix || path.startsWith(`${prefix}/`));

describe("OpenAPI document", () => {
  let doc: OpenApiDocument;

  beforeAll(async () => {
    const response = await call("/v1/openapi.json");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/json");
    doc = (await response.json()) as OpenApiDocument;
  });

  it("is OpenAPI 3.1 and documents every route the status API serves", () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    const documented = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method} ${path}`));
    expect(servedRoutes()).toEqual([
      "delete /v1/batches/{id}",
      "delete /v1/endpoints/{id}",
      "delete /v1/endpoints/{id}/replays/{replay_id}",
      "get /v1/alerts",
      "get /v1/batches",
      "get /v1/batches/{id}",
      "get /v1/budget",
      "get /v1/endpoints",
      "get /v1/endpoints/{id}",
      "get /v1/endpoints/{id}/messages",
      "get /v1/endpoints/{id}/replays/{replay_id}",
      "get /v1/pipeline",
      "get /v1/transactions",
      "get /v1/transactions/export",
      "get /v1/transactions/{id}",
      "get /v1/transactions/{id}/events",
      "get /v1/transactions/{id}/operations",
      "get /v1/transactions/{id}/timeline",
      "patch /v1/endpoints/{id}",
      "post /v1/alerts/{id}/acknowledge",
      "post /v1/batches",
      "post /v1/endpoints",
      "post /v1/endpoints/{id}/replay",
      "post /v1/endpoints/{id}/secret",
    ]);
    for (const route of servedRoutes()) expect(documented).toContain(route);
  });

  it("declares the bearer scheme on every operation, and the error envelope for 400, 401, 404 and 429", () => {
    expect(doc.components.securitySchemes.merchantApiKey).toMatchObject({ type: "http", scheme: "bearer" });
    const codes = doc.components.schemas.Error?.properties?.error?.properties?.code?.enum;
    expect(new Set(codes)).toEqual(new Set(Object.keys(ERROR_CODES)));
    for (const [path, methods] of operationsUnder(doc, "/v1")) {
      for (const [method, operation] of Object.entries(methods)) {
        const label = `${method} ${path}`;
        expect(operation.security, label).toEqual([{ merchantApiKey: [] }]);
        const success = operation.responses["200"] ?? operation.responses["201"] ?? operation.responses["202"];
        // The export streams a file (CSV or NDJSON); every other answer is a documented JSON schema.
        if (path === "/v1/transactions/export")
          expect(Object.keys(success?.content ?? {}), label).toEqual(["text/csv", "application/x-ndjson"]);
        else expect(success?.content?.["application/json"]?.schema.$ref, label).toMatch(/^#\/components\/schemas\//);
        const statuses = path.includes("{id}") ? ["400", "401", "404", "429"] : ["400", "401", "429"];
        for (const status of statuses) {
          expect(operation.responses[status]?.content?.["application/json"]?.schema.$ref, `${label} ${status}`).toBe(
            "#/components/schemas/Error",
          );
        }
        expect(operation.responses["429"]?.headers, label).toHaveProperty("Retry-After");
        if (path.startsWith("/v1/transactions/{id}")) {
          expect(operation.responses["304"], label).toBeDefined();
          expect(
            operation.parameters?.find((p) => p.in === "path"),
            label,
          ).toMatchObject({ name: "id", required: true });
          const header = operation.parameters?.find((p) => p.in === "header");
          expect(header, label).toMatchObject({ name: "if-none-match", required: false });
        }
      }
    }
  });

  it("documents every admin route with the admin token's bearer scheme and the error envelope for 401", () => {
    expect(doc.components.securitySchemes.adminToken).toMatchObject({ type: "http", scheme: "bearer" });
    const admin = operationsUnder(doc, "/admin");
    const documented = admin.flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method} ${path}`));
    const served = servedRoutes(adminRoutes.routes, "/admin");
    expect(served).toContain("post /admin/merchants");
    expect(documented.sort()).toEqual(served);
    for (const [path, methods] of admin) {
      for (const [method, operation] of Object.entries(methods)) {
        const label = `${method} ${path}`;
        expect(operation.security, label).toEqual([{ adminToken: [] }]);
        expect(operation.responses["401"]?.content?.["application/json"]?.schema.$ref, label).toBe("#/components/schemas/Error");
      }
    }
  });

  it("documents the list's query parameters with their constraints", () => {
    const parameters = doc.paths["/v1/transactions"]?.get?.parameters ?? [];
    const byName = Object.fromEntries(parameters.map((p) => [p.name, p]));
    expect(Object.keys(byName).sort()).toEqual(["cursor", "limit", "payment_type", "reference", "status", "updated_after"]);
    expect(parameters.every((p) => p.in === "query" && p.required === false)).toBe(true);
    expect(byName.limit?.schema).toMatchObject({ type: "integer", minimum: 1, maximum: 100, default: 50 });
    expect(byName.status?.schema).toMatchObject({ type: "string", enum: [...TRANSACTION_STATUSES] });
    expect(byName.updated_after?.schema).toMatchObject({ type: "string", format: "date-time" });
    expect(byName.reference?.schema).toMatchObject({ type: "string", minLength: 1, maxLength: 200 });
  });

  it("resolves every $ref", () => {
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((match) => match[1] ?? "");
    expect(refs.length).toBeGreaterThan(0);
    for (const name of refs) expect(doc.components.schemas, name).toHaveProperty(name);
  });
});

describe("response schemas match real responses", () => {
  /** Parses with the documented schema; zod drops unknown keys, so equality also proves nothing undocumented was sent. */
  function expectConforms<S extends z.ZodType>(schema: S, body: unknown) {
    const parsed = schema.safeParse(body);
    expect(parsed.success, parsed.success ? "" : parsed.error.message).toBe(true);
    expect(parsed.data).toEqual(body);
  }

  it("for every route's 200, with and without optional parts", async () => {
    const merchant = await createMerchant({ fulfillment_url: "https://shop.example/f" });
    const id = merchant.merchant.id;
    const full = await seedTransaction(id, { status: "completed" });
    const bare = await seedTransaction(id, {
      invoiceId: null,
      name: null,
      paymentType: null,
      gatewayName: null,
      metadata: {},
      lastEventId: null,
      lastEventName: null,
      lastEventFiredAt: null,
    });
    await seedTransactions([transactionRow(id), transactionRow(id)]);
    await seedFulfillment({ merchantId: id, transactionId: full.id, status: "delivered", deliveredAt: "2026-01-01T10:06:00.000Z" });
    await seedOperation({ merchantId: id, transactionId: full.id, metadata: { a: "b" } });
    await seedOperation({
      merchantId: id,
      transactionId: full.id,
      currency: null,
      hasFailed: null,
      isAccountable: null,
      paymentType: null,
      errorCode: "card.declined",
      errorMessage: "declined",
    });
    await seedEvent({ merchantId: id, transactionId: full.id });
    await seedEvent({ merchantId: id, transactionId: full.id, outcome: "stale", name: null, firedAt: null, processedAt: null });

    const cases: [string, z.ZodType][] = [
      [`/v1/transactions/${full.id}`, transactionResponse],
      [`/v1/transactions/${bare.id}`, transactionResponse],
      ["/v1/transactions?limit=2", transactionPageResponse],
      ["/v1/transactions?status=completed", transactionPageResponse],
      [`/v1/transactions/${full.id}/operations`, operationsResponse],
      [`/v1/transactions/${bare.id}/operations`, operationsResponse],
      [`/v1/transactions/${full.id}/events`, eventsResponse],
    ];
    for (const [path, schema] of cases) {
      const response = await getWithKey(path, merchant.api_key);
      expect(response.status, path).toBe(200);
      expectConforms(schema, await response.json());
    }
  });

  it("for the error envelope of 400, 401, 404 and 429", async () => {
    const merchant = await createMerchant();
    const responses = [
      await getWithKey("/v1/transactions?limit=0", merchant.api_key),
      await getWithKey("/v1/transactions?cursor=x", merchant.api_key),
      await getWithKey("/v1/transactions", "wrong"),
      await getWithKey("/v1/transactions/tr_nope", merchant.api_key),
      await appWithStatusLimiter({ limit: async () => ({ success: false }) })("/v1/transactions", {
        headers: { authorization: `Bearer ${merchant.api_key}` },
      }),
    ];
    expect(responses.map((r) => r.status)).toEqual([400, 400, 401, 404, 429]);
    for (const response of responses) expectConforms(errorResponse, await response.json());
  });
});
