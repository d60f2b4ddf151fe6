import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../../src/app";
import { queueFromBinding } from "../../../src/ingest/delivery-queue";
import { MAX_CURSOR_LENGTH } from "../../../src/transactions/api-schemas";
import { type CreatedMerchant, createMerchant } from "../../support/fixtures";
import {
  appWithStatusLimiter,
  countingLimiter,
  getJson,
  getWithKey,
  issueKey,
  seedTransaction,
  seedTransactions,
  transactionRow,
} from "../../support/status-api";

interface ErrorBody {
  error: { code: string; message: string; request_id: string };
}

async function expectError(response: Response, status: number, code: string): Promise<string> {
  expect(response.status).toBe(status);
  const body = (await response.json()) as ErrorBody;
  expect(body.error.code).toBe(code);
  expect(body.error.request_id).toEqual(expect.any(String));
  return body.error.message;
}

const b64url = (text: string) => btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

describe("status API: bad queries", () => {
  let merchant: CreatedMerchant;
  let transactionId: string;
  let cursor: string;

  beforeAll(async () => {
    merchant = await createMerchant();
    transactionId = (await seedTransaction(merchant.merchant.id)).id;
    await seedTransactions(Array.from({ length: 3 }, () => transactionRow(merchant.merchant.id, { status: "completed" })));
    const page = await getJson<{ next_cursor: string | null }>("/v1/transactions?status=completed&limit=1", merchant.api_key);
    if (!page.next_cursor) throw new Error("expected a next page");
    cursor = page.next_cursor;
  });

  it.each([
    ["limit=0", "limit"],
    ["limit=101", "limit"],
    ["limit=abc", "limit"],
    ["limit=-1", "limit"],
    ["limit=1.5", "limit"],
    ["limit=", "limit"],
    ["limit=1&limit=2", "limit must be given once"],
    ["updated_after=yesterday", "updated_after"],
    ["updated_after=2026-02-31T00:00:00Z", "updated_after"],
    ["updated_after=2026-01-01", "updated_after"],
    ["updated_after=2026-01-01T10:00:00", "updated_after"],
    ["status=captured", "status must be one of"],
    ["status=COMPLETED", "status must be one of"],
    ["status=completed&status=failed", "status must be given once"],
    ["colour=blue", 'unknown query parameter "colour"'],
    ["page=2&limit=5", 'unknown query parameter "page"'],
  ])("GET /v1/transactions?%s: 400 invalid_query naming the problem", async (query, named) => {
    const message = await expectError(await getWithKey(`/v1/transactions?${query}`, merchant.api_key), 400, "invalid_query");
    expect(message).toContain(named);
  });

  it("lists every problem of a query at once", async () => {
    const message = await expectError(await getWithKey("/v1/transactions?limit=0&status=nope", merchant.api_key), 400, "invalid_query");
    expect(message).toContain("limit");
    expect(message).toContain("status");
  });

  it.each([
    ["garbage", "not-a-cursor!"],
    ["base64 of text", b64url("hello")],
    ["base64 of another JSON shape", b64url(JSON.stringify({ offset: 100 }))],
    ["a cursor of a future version", b64url(JSON.stringify({ v: 2, u: "2026-01-01T00:00:00.000Z", i: "tr_1" }))],
    ["a cursor with an unknown status", b64url(JSON.stringify({ v: 1, u: "2026-01-01T00:00:00.000Z", i: "tr_1", s: "nope" }))],
    ["an over-long cursor", "A".repeat(MAX_CURSOR_LENGTH + 1)],
  ])("400 invalid_cursor for %s", async (_name, value) => {
    const response = await getWithKey(`/v1/transactions?cursor=${encodeURIComponent(value)}`, merchant.api_key);
    const code = value.length > MAX_CURSOR_LENGTH ? "invalid_query" : "invalid_cursor";
    const message = await expectError(response, 400, code);
    expect(message).toContain("cursor");
  });

  it("400 invalid_cursor when the query's filters differ from the cursor's", async () => {
    const other = await expectError(
      await getWithKey(`/v1/transactions?status=failed&cursor=${cursor}`, merchant.api_key),
      400,
      "invalid_cursor",
    );
    expect(other).toContain("status");
    const added = await expectError(
      await getWithKey(`/v1/transactions?updated_after=2026-01-01T00:00:00Z&cursor=${cursor}`, merchant.api_key),
      400,
      "invalid_cursor",
    );
    expect(added).toContain("updated_after");
    // The same filter again is fine.
    expect((await getWithKey(`/v1/transactions?status=completed&cursor=${cursor}`, merchant.api_key)).status).toBe(200);
  });

  it.each(["", "/operations", "/events"])("GET /v1/transactions/{id}%s: 400 for any query parameter", async (suffix) => {
    const message = await expectError(
      await getWithKey(`/v1/transactions/${transactionId}${suffix}?expand=all`, merchant.api_key),
      400,
      "invalid_query",
    );
    expect(message).toContain('"expand"');
  });
});

describe("status API: not found", () => {
  it.each(["", "/operations", "/events"])("GET /v1/transactions/{id}%s: 404 for an unknown or impossible id", async (suffix) => {
    const merchant = await createMerchant();
    const message = await expectError(await getWithKey(`/v1/transactions/tr_missing${suffix}`, merchant.api_key), 404, "not_found");
    expect(message).toContain("tr_missing");
    await expectError(await getWithKey(`/v1/transactions/${"x".repeat(300)}${suffix}`, merchant.api_key), 404, "not_found");
  });

  it("404 for an unknown route under /v1", async () => {
    const merchant = await createMerchant();
    await expectError(await getWithKey("/v1/refunds", merchant.api_key), 404, "not_found");
    await expectError(await getWithKey("/v1/transactions/tr_1/refunds", merchant.api_key), 404, "not_found");
  });
});

describe("status API: rate limiting", () => {
  it("429 with Retry-After and the envelope when the limiter refuses", async () => {
    const merchant = await createMerchant();
    const { id } = await seedTransaction(merchant.merchant.id);
    const fetch = appWithStatusLimiter({ limit: async () => ({ success: false }) });
    for (const path of [
      "/v1/transactions",
      `/v1/transactions/${id}`,
      `/v1/transactions/${id}/operations`,
      `/v1/transactions/${id}/events`,
    ]) {
      const response = await fetch(path, { headers: { authorization: `Bearer ${merchant.api_key}` } });
      expect(response.headers.get("retry-after"), path).toBe("60");
      const message = await expectError(response, 429, "rate_limited");
      expect(message).toContain("retry after 60 seconds");
    }
  });

  it("counts per API key: one exhausted key leaves the merchant's other key alone", async () => {
    const merchant = await createMerchant();
    const second = await issueKey(merchant);
    const { limiter, keys } = countingLimiter(3);
    const fetch = appWithStatusLimiter(limiter);
    const get = (key: string) => fetch("/v1/transactions", { headers: { authorization: `Bearer ${key}` } });

    for (let i = 0; i < 3; i++) expect((await get(merchant.api_key)).status).toBe(200);
    await expectError(await get(merchant.api_key), 429, "rate_limited");
    expect((await get(second.key)).status).toBe(200);
    expect(new Set(keys)).toEqual(new Set([merchant.api_key_id, second.id]));
  });

  it("counts only authenticated requests: a bad key is a 401 without touching the limiter", async () => {
    const { limiter, keys } = countingLimiter(0);
    const fetch = appWithStatusLimiter(limiter);
    const response = await fetch("/v1/transactions", { headers: { authorization: "Bearer sre_0011223344556677_nope" } });
    await expectError(response, 401, "unauthorized");
    expect(keys).toEqual([]);
  });

  it("serves the request when the limiter itself fails", async () => {
    const merchant = await createMerchant();
    const fetch = appWithStatusLimiter({ limit: () => Promise.reject(new Error("rate limiter unavailable")) });
    const response = await fetch("/v1/transactions", { headers: { authorization: `Bearer ${merchant.api_key}` } });
    expect(response.status).toBe(200);
  });

  it("uses the STATUS_API_LIMITER binding by default, keyed by the API key id", async () => {
    const merchant = await createMerchant();
    // The binding of wrangler.toml answers locally (Miniflare) and lets a first request through.
    expect(await env.STATUS_API_LIMITER.limit({ key: `probe-${merchant.api_key_id}` })).toEqual({ success: true });
    expect((await getWithKey("/v1/transactions", merchant.api_key)).status).toBe(200);

    // Without an injected limiter the app asks whatever the binding is.
    const { limiter, keys } = countingLimiter(0);
    const app = createApp({ deliveryQueue: (bindings) => queueFromBinding(bindings.WEBHOOKS) });
    const response = await app.fetch(
      new Request("https://edge.test/v1/transactions", { headers: { authorization: `Bearer ${merchant.api_key}` } }),
      { ...env, STATUS_API_LIMITER: limiter },
    );
    await expectError(response, 429, "rate_limited");
    expect(keys).toEqual([merchant.api_key_id]);
  });
});
