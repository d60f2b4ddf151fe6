import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { basic, type CreatedMerchant, call, createMerchant } from "../../support/fixtures";
import { shardedDb } from "../../support/shards";
import {
  getJson,
  getWithKey,
  issueKey,
  merchantWithTransaction,
  revokeKey,
  seedEvent,
  seedFulfillment,
  seedOperation,
  seedTransaction,
} from "../../support/status-api";

interface ErrorBody {
  error: { code: string; message: string; request_id: string };
}

const routes = (id: string) => [
  `/v1/transactions/${id}`,
  "/v1/transactions",
  `/v1/transactions/${id}/operations`,
  `/v1/transactions/${id}/events`,
];

async function expectUnauthorized(response: Response, label: string) {
  expect(response.status, label).toBe(401);
  expect(response.headers.get("www-authenticate"), label).toBe('Bearer realm="status-api"');
  const body = (await response.json()) as ErrorBody;
  expect(body.error, label).toMatchObject({ code: "unauthorized", message: "missing, invalid or revoked API key" });
}

describe("status API: authentication", () => {
  let a: CreatedMerchant;
  let transactionId: string;

  beforeAll(async () => {
    ({
      merchant: a,
      transaction: { id: transactionId },
    } = await merchantWithTransaction());
  });

  it.each([
    ["no Authorization", () => ({})],
    ["an empty Bearer", () => ({ authorization: "Bearer " })],
    ["a key that is not of our shape", () => ({ authorization: "Bearer not-a-key" })],
    ["an unknown key id", () => ({ authorization: `Bearer sre_0011223344556677_${"A".repeat(43)}` })],
    [
      "a known key id with the wrong secret",
      () => ({ authorization: `Bearer ${a.api_key.slice(0, -1)}${a.api_key.endsWith("A") ? "B" : "A"}` }),
    ],
    ["the key with a suffix", () => ({ authorization: `Bearer ${a.api_key}x` })],
    ["the key as Basic", () => ({ authorization: basic(a.api_key, "") })],
    ["the key without a scheme", () => ({ authorization: a.api_key })],
    // The admin token itself acts as the merchant named by X-Merchant-Id (test/integration/console-api).
    ["the admin token with a suffix", () => ({ authorization: `Bearer ${env.ADMIN_TOKEN}x` })],
    ["the webhook password", () => ({ authorization: `Bearer ${a.webhook.password}` })],
  ])("401 with %s, on every route, before any validation", async (_name, headers) => {
    for (const path of [...routes(transactionId), "/v1/transactions?limit=0"]) {
      await expectUnauthorized(await call(path, { headers: headers() }), path);
    }
  });

  it("accepts the scheme name in any case", async () => {
    const response = await call(`/v1/transactions/${transactionId}`, { headers: { authorization: `bearer ${a.api_key}` } });
    expect(response.status).toBe(200);
  });

  it("refuses a revoked key on every route while the merchant's other key keeps working", async () => {
    const { merchant, transaction } = await merchantWithTransaction();
    const second = await issueKey(merchant);
    for (const path of routes(transaction.id)) expect((await getWithKey(path, merchant.api_key)).status, path).toBe(200);

    await revokeKey(merchant, merchant.api_key_id);
    for (const path of routes(transaction.id)) {
      await expectUnauthorized(await getWithKey(path, merchant.api_key), path);
      expect((await getWithKey(path, second.key)).status, path).toBe(200);
    }
    await revokeKey(merchant, second.id);
    await expectUnauthorized(await getWithKey("/v1/transactions", second.key), "second key revoked");
  });

  describe("same work for every rejection", () => {
    afterEach(() => {
      vi.restoreAllMocks();
    });

    it("hashes and compares once whether the key id is unknown, the secret wrong, the key revoked or malformed", async () => {
      const revoked = await createMerchant();
      await revokeKey(revoked, revoked.api_key_id);
      const wrongSecret = `sre_${a.api_key_id}_${"B".repeat(43)}`;
      const cases = {
        unknown: `sre_ffeeddccbbaa9988_${"A".repeat(43)}`,
        wrongSecret,
        revoked: revoked.api_key,
        malformed: "sre_short",
        valid: a.api_key,
      };
      const digest = vi.spyOn(crypto.subtle, "digest");
      const compare = vi.spyOn(crypto.subtle, "timingSafeEqual");
      const work: Record<string, [number, number]> = {};
      for (const [name, key] of Object.entries(cases)) {
        digest.mockClear();
        compare.mockClear();
        await getWithKey("/v1/transactions?limit=1", key);
        work[name] = [digest.mock.calls.length, compare.mock.calls.length];
      }
      // Every path: the admin token's check first (the presented token and ADMIN_TOKEN hashed, compared with both admin
      // tokens, as requireAdmin does), then one SHA-256 of the presented key and one comparison (the valid one adds no extra).
      expect(work).toEqual({ unknown: [3, 3], wrongSecret: [3, 3], revoked: [3, 3], malformed: [3, 3], valid: [3, 3] });
    });
  });
});

describe("status API: merchant isolation", () => {
  let a: CreatedMerchant;
  let b: CreatedMerchant;
  let bTransaction: string;

  beforeAll(async () => {
    a = await createMerchant({ fulfillment_url: "https://a.example/f" });
    b = await createMerchant({ fulfillment_url: "https://b.example/f" });
    const bRow = await seedTransaction(b.merchant.id, { status: "completed" });
    bTransaction = bRow.id;
    const ids = { merchantId: b.merchant.id, transactionId: bRow.id };
    await seedOperation(ids);
    await seedEvent(ids);
    await seedFulfillment({ ...ids, status: "delivered", deliveredAt: new Date().toISOString() });
    await seedTransaction(a.merchant.id, { status: "completed" });
  });

  it.each(["", "/operations", "/events"])("A's key gets a plain 404 for B's transaction on /v1/transactions/{id}%s", async (suffix) => {
    const path = `/v1/transactions/${bTransaction}${suffix}`;
    expect((await getWithKey(path, b.api_key)).status).toBe(200);
    const theirs = await getWithKey(path, a.api_key);
    const missing = await getWithKey(`/v1/transactions/tr_doesnotexist${suffix}`, a.api_key);
    expect(theirs.status).toBe(404);
    const theirsBody = (await theirs.json()) as ErrorBody;
    const missingBody = (await missing.json()) as ErrorBody;
    expect(theirsBody.error.code).toBe("not_found");
    // Indistinguishable from a transaction that does not exist: same code, same message but for the id.
    expect(theirsBody.error.message.replace(bTransaction, "ID")).toBe(missingBody.error.message.replace("tr_doesnotexist", "ID"));
  });

  it("A's list never contains B's transactions, whatever the filters", async () => {
    for (const query of ["", "?status=completed", "?limit=100", "?updated_after=2000-01-01T00:00:00Z"]) {
      const body = await getJson<{ transactions: { id: string }[] }>(`/v1/transactions${query}`, a.api_key);
      expect(body.transactions.length, query).toBeGreaterThan(0);
      expect(
        body.transactions.map((t) => t.id),
        query,
      ).not.toContain(bTransaction);
    }
  });

  it("A cannot walk B's list with a cursor B was given", async () => {
    await seedTransaction(b.merchant.id);
    const page = await getJson<{ next_cursor: string | null }>("/v1/transactions?limit=1", b.api_key);
    expect(page.next_cursor).not.toBeNull();
    const body = await getJson<{ transactions: { id: string }[] }>(`/v1/transactions?limit=100&cursor=${page.next_cursor}`, a.api_key);
    expect(body.transactions.map((t) => t.id)).not.toContain(bTransaction);
  });

  it("A's ETag for B's transaction gets no 304", async () => {
    const mine = await getWithKey(`/v1/transactions/${bTransaction}`, b.api_key);
    const tag = mine.headers.get("etag") ?? "";
    const response = await getWithKey(`/v1/transactions/${bTransaction}`, a.api_key, { "if-none-match": tag });
    expect(response.status).toBe(404);
  });

  it("never shows the API key, its hash or other merchant secrets in a response", async () => {
    const responses = await Promise.all(routes(bTransaction).map((path) => getWithKey(path, b.api_key)));
    const keyHash = await shardedDb.prepare("SELECT key_hash FROM api_keys WHERE id = ?").bind(b.api_key_id).first<string>("key_hash");
    for (const response of responses) {
      const text = await response.text();
      for (const secret of [b.api_key, keyHash ?? "", b.webhook.password, b.fulfillment.signing_secret]) expect(text).not.toContain(secret);
      // The admin token's answers depend on X-Merchant-Id as well (test/integration/console-api).
      expect(response.headers.get("vary")).toBe("Authorization, X-Merchant-Id");
    }
  });

  it("answers with the customer's personal or payment data are never stored by a cache; the others are revalidated", async () => {
    const policies: Record<string, string> = {
      [`/v1/transactions/${bTransaction}`]: "private, no-store",
      "/v1/transactions": "private, no-store",
      [`/v1/transactions/${bTransaction}/operations`]: "private, no-store",
      [`/v1/transactions/${bTransaction}/timeline`]: "private, no-store",
      "/v1/alerts": "private, no-store",
      [`/v1/transactions/${bTransaction}/events`]: "private, no-cache",
    };
    for (const [path, policy] of Object.entries(policies)) {
      const response = await getWithKey(path, b.api_key);
      await response.body?.cancel();
      expect(response.status, path).toBe(200);
      expect(response.headers.get("cache-control"), path).toBe(policy);
      expect(response.headers.get("vary"), path).toBe("Authorization, X-Merchant-Id");
    }
  });
});
