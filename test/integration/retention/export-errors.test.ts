import { beforeAll, describe, expect, it } from "vitest";
import { type CreatedMerchant, createMerchant } from "../../support/fixtures";
import { appWithStatusLimiter, countingLimiter, getWithKey } from "../../support/status-api";

interface ErrorBody {
  error: { code: string; message: string; request_id: string };
}

const RANGE = "created_after=2026-03-01T00:00:00Z&created_before=2026-03-08T00:00:00Z";

describe("export: bad queries are 400s naming the parameter, in the error envelope", () => {
  let merchant: CreatedMerchant;

  beforeAll(async () => {
    merchant = await createMerchant();
  });

  it.each([
    ["", "created_after"],
    ["created_after=2026-03-01T00:00:00Z", "created_before"],
    ["created_before=2026-03-08T00:00:00Z", "created_after"],
    ["created_after=yesterday&created_before=2026-03-08T00:00:00Z", "created_after must be one ISO 8601 date-time"],
    ["created_after=2026-03-01&created_before=2026-03-08T00:00:00Z", "created_after must be one ISO 8601 date-time"],
    ["created_after=2026-03-01T00:00:00&created_before=2026-03-08T00:00:00Z", "created_after must be one ISO 8601 date-time"],
    [`${RANGE}&created_after=2026-03-02T00:00:00Z`, "created_after must be one ISO 8601 date-time"],
    ["created_after=2026-03-08T00:00:00Z&created_before=2026-03-08T00:00:00Z", "created_before must be after created_after"],
    ["created_after=2026-03-09T00:00:00Z&created_before=2026-03-08T00:00:00Z", "created_before must be after created_after"],
    ["created_after=2026-01-01T00:00:00Z&created_before=2026-02-01T00:00:00.001Z", "at most 31 days after created_after"],
    [`${RANGE}&format=xlsx`, "format must be csv or ndjson"],
    [`${RANGE}&format=CSV`, "format must be csv or ndjson"],
    [`${RANGE}&format=csv&format=ndjson`, "format must be csv or ndjson"],
    [`${RANGE}&limit=10`, 'unknown query parameter "limit"'],
  ])("?%s → 400 invalid_query (%s)", async (query, expected) => {
    const response = await getWithKey(`/v1/transactions/export?${query}`, merchant.api_key);
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await response.json()) as ErrorBody;
    expect(body.error.code).toBe("invalid_query");
    expect(body.error.message).toContain(expected);
    expect(body.error.request_id).toEqual(expect.any(String));
  });

  it("takes a range of exactly 31 days", async () => {
    const response = await getWithKey(
      "/v1/transactions/export?created_after=2026-01-01T00:00:00Z&created_before=2026-02-01T00:00:00Z",
      merchant.api_key,
    );
    expect(response.status).toBe(200);
    await response.body?.cancel();
  });

  it("is rate limited per API key like the rest of the status API", async () => {
    const { limiter, keys } = countingLimiter(1);
    const fetch = appWithStatusLimiter(limiter);
    const headers = { authorization: `Bearer ${merchant.api_key}` };
    const first = await fetch(`/v1/transactions/export?${RANGE}`, { headers });
    expect(first.status).toBe(200);
    await first.body?.cancel();
    const second = await fetch(`/v1/transactions/export?${RANGE}`, { headers });
    expect(second.status).toBe(429);
    expect(second.headers.get("retry-after")).toBe("60");
    expect(((await second.json()) as ErrorBody).error.code).toBe("rate_limited");
    expect(keys).toEqual([merchant.api_key_id, merchant.api_key_id]);
  });
});
