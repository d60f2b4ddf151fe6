import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { encodePageCursor } from "../../../src/lib/cursor";
import { ADMIN, type CreatedMerchant, call, createMerchant } from "../../support/fixtures";
import { getWithKey, seedTransaction } from "../../support/status-api";
import { asAdmin, expectError } from "./support";

describe("console API: bad input is a 400 naming the parameter", () => {
  let merchant: CreatedMerchant;
  let transactionId: string;

  beforeAll(async () => {
    merchant = await createMerchant();
    transactionId = (await seedTransaction(merchant.merchant.id)).id;
  });

  it.each([
    ["/v1/pipeline?window_minutes=0", "window_minutes"],
    ["/v1/pipeline?window_minutes=1441", "window_minutes"],
    ["/v1/pipeline?window_minutes=abc", "window_minutes"],
    ["/v1/pipeline?window_minutes=1.5", "window_minutes"],
    ["/v1/pipeline?window_minutes=5&window_minutes=6", "window_minutes must be given once"],
    ["/v1/pipeline?since=1", 'unknown query parameter "since"'],
    ["/v1/budget?bucket=sandbox", 'unknown query parameter "bucket"'],
    ["/v1/batches?limit=0", "limit"],
    ["/v1/batches?limit=101", "limit"],
    ["/v1/batches?status=queued", 'unknown query parameter "status"'],
    ["/v1/transactions?payment_type=", "payment_type"],
    ["/v1/transactions?payment_type=card%20x", "payment_type"],
    [`/v1/transactions?payment_type=${"a".repeat(65)}`, "payment_type"],
    ["/v1/transactions?payment_type=card&payment_type=apm", "payment_type must be given once"],
  ])("%s", async (path, named) => {
    const error = await expectError(await getWithKey(path, merchant.api_key), 400, "invalid_query", path);
    expect(error.message).toContain(named);
  });

  it("refuses a query on the timeline, and answers 404 for an unknown or impossible transaction id", async () => {
    const error = await expectError(
      await getWithKey(`/v1/transactions/${transactionId}/timeline?x=1`, merchant.api_key),
      400,
      "invalid_query",
    );
    expect(error.message).toContain('"x"');
    await expectError(await getWithKey("/v1/transactions/tr_unknown/timeline", merchant.api_key), 404, "not_found");
    await expectError(await getWithKey(`/v1/transactions/${"t".repeat(129)}/timeline`, merchant.api_key), 404, "not_found");
  });

  it("refuses cursors it did not issue, or of another list", async () => {
    for (const cursor of ["x", encodePageCursor({ c: 1 }), encodePageCursor({ i: "acme" })]) {
      await expectError(await getWithKey(`/v1/batches?cursor=${cursor}`, merchant.api_key), 400, "invalid_cursor", cursor);
    }
    const page = await getWithKey("/v1/transactions?payment_type=card&limit=1", merchant.api_key);
    expect(page.status).toBe(200);
    const foreign = encodePageCursor({ v: 1, u: "2026-01-01T00:00:00.000Z", i: "tr_a", p: "card" });
    const error = await expectError(
      await getWithKey(`/v1/transactions?payment_type=sandbox-apm&cursor=${foreign}`, merchant.api_key),
      400,
      "invalid_cursor",
    );
    expect(error.message).toContain("payment_type");
  });

  it("answers the timeline with an ETag and 304 while it is unchanged", async () => {
    const first = await getWithKey(`/v1/transactions/${transactionId}/timeline`, merchant.api_key);
    expect(first.status).toBe(200);
    const tag = first.headers.get("etag") ?? "";
    expect(tag).not.toBe("");
    const again = await getWithKey(`/v1/transactions/${transactionId}/timeline`, merchant.api_key, { "if-none-match": tag });
    expect(again.status).toBe(304);
  });
});

describe("console API: authentication errors", () => {
  let merchant: CreatedMerchant;

  beforeAll(async () => {
    merchant = await createMerchant();
  });

  const routes = ["/v1/pipeline", "/v1/budget", "/v1/batches", "/v1/transactions/tr_x/timeline", "/v1/transactions?payment_type=card"];

  it.each(routes)(
    "%s: 401 without a key, with a wrong admin token (X-Merchant-Id or not), the same envelope as a wrong key",
    async (path) => {
      const wrongKey = await call(path, { headers: { authorization: "Bearer sre_0011223344556677_nope" } });
      const reference = await expectError(wrongKey, 401, "unauthorized", path);
      for (const headers of [{}, asAdmin(merchant.merchant.id, `${env.ADMIN_TOKEN}x`), asAdmin(undefined, "not-the-admin-token")]) {
        const response = await call(path, { headers });
        expect(response.headers.get("www-authenticate"), path).toBe('Bearer realm="status-api"');
        const error = await expectError(response, 401, "unauthorized", path);
        expect(error.message).toBe(reference.message);
      }
    },
  );

  it.each(routes)("%s: the admin token needs a well-formed X-Merchant-Id naming a merchant", async (path) => {
    const missing = await expectError(await call(path, { headers: asAdmin() }), 400, "bad_request", path);
    expect(missing.message).toContain("X-Merchant-Id");
    const malformed = await expectError(await call(path, { headers: asAdmin("Not A Merchant!") }), 400, "bad_request", path);
    expect(malformed.message).toContain("X-Merchant-Id");
    const unknown = await expectError(await call(path, { headers: asAdmin("no-such-merchant") }), 404, "not_found", path);
    expect(unknown.message).toContain("no-such-merchant");
  });

  it("answers 400 without X-Merchant-Id on a write too, and writes nothing", async () => {
    const response = await call("/v1/batches", {
      method: "POST",
      headers: { ...asAdmin(), "content-type": "application/json" },
      body: JSON.stringify({ kind: "refresh", transaction_ids: ["tr_nobody"] }),
    });
    await expectError(response, 400, "bad_request");
  });
});

describe("GET /admin/merchants: errors", () => {
  it.each([
    ["?limit=0", "invalid_query"],
    ["?limit=abc", "invalid_query"],
    ["?limit=101", "invalid_query"],
    ["?name=acme", "invalid_query"],
    ["?cursor=x", "invalid_cursor"],
  ])("%s is a 400 %s", async (query, code) => {
    await expectError(await call(`/admin/merchants${query}`, { headers: ADMIN }), 400, code, query);
  });

  it("is 401 without the admin token, and a merchant's API key is no admin token", async () => {
    const merchant = await createMerchant();
    await expectError(await call("/admin/merchants"), 401, "unauthorized");
    await expectError(await call("/admin/merchants", { headers: { authorization: `Bearer ${merchant.api_key}` } }), 401, "unauthorized");
  });
});
