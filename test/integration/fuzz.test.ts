import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ADMIN, basic, call, createMerchant } from "../support/fixtures";
import { shardedDb } from "../support/shards";

const TABLES = ["merchants", "api_keys", "transactions", "operations", "events", "fulfillments", "dead_letters", "batches", "admin_audit"];

/** Row counts of every table: a request that was refused must leave them all as they were. */
async function state(): Promise<string> {
  const counts = await shardedDb.batch(TABLES.map((table) => shardedDb.prepare(`SELECT '${table}' AS t, count(*) AS n FROM ${table}`)));
  return JSON.stringify(counts.map((result) => result.results[0]));
}

async function expectCleanRefusal(response: Response, allowed: number[]) {
  const text = await response.text();
  expect(response.status, text).toBeLessThan(500);
  expect(allowed, `${response.status} ${text}`).toContain(response.status);
  // No stack trace or runtime error text ever reaches a client.
  expect(text).not.toMatch(/\bat \S+ \(|TypeError|ReferenceError|SyntaxError|D1_ERROR|SQLITE/);
  if (response.status >= 400) expect(JSON.parse(text)).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
}

const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
const headerValue = fc.string({ maxLength: 60 }).map((s) => s.replace(/[^\x20-\x7e]/g, ""));
const anyBody = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.json({ maxDepth: 3 }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.record({ event_id: fc.string({ maxLength: 80 }), event_type: fc.anything() }).map((v) => JSON.stringify(v)),
  fc.uint8Array({ maxLength: 200 }),
);
const pathSegment = fc.oneof(fc.stringMatching(/^[a-zA-Z0-9_.%-]{0,40}$/), fc.constantFrom("..", "%2e%2e", "%00", "a".repeat(500), ""));
const queryString = fc
  .array(fc.tuple(fc.stringMatching(/^[a-z_[\]]{1,15}$/), fc.string({ maxLength: 40 })), { maxLength: 5 })
  .map((pairs) => new URLSearchParams(pairs).toString());

const RUNS = 150;

describe("fuzzing the public surface", async () => {
  const merchant = await createMerchant();

  it("webhook endpoint: arbitrary paths, headers and bodies without the credential change nothing and never 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(pathSegment, fc.dictionary(headerName, headerValue, { maxKeys: 4 }), anyBody, async (segment, headers, body) => {
        const before = await state();
        const response = await call(`/webhooks/smart-router/${segment}`, { method: "POST", headers, body });
        await expectCleanRefusal(response, [400, 401, 404, 405, 413]);
        expect(await state()).toBe(before);
      }),
      { numRuns: RUNS },
    );
  });

  it("webhook endpoint: arbitrary bodies with the credential are a 200 only for a valid delivery, else a 4xx", async () => {
    await fc.assert(
      fc.asyncProperty(anyBody, fc.dictionary(headerName, headerValue, { maxKeys: 3 }), async (body, headers) => {
        const response = await call(merchant.webhook.path, {
          method: "POST",
          headers: { ...headers, authorization: basic(merchant.webhook.username, merchant.webhook.password) },
          body,
        });
        await expectCleanRefusal(response, [200, 400, 413]);
        if (response.status === 200) {
          const parsed = JSON.parse(typeof body === "string" ? body : new TextDecoder().decode(body)) as { event_id?: unknown };
          expect(String(parsed.event_id)).toMatch(/^ev_[A-Za-z0-9]{1,64}$/);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("status API: arbitrary paths and query strings never 5xx and change nothing", async () => {
    const resource = fc.constantFrom("transactions", "batches", "openapi.json", "nope");
    await fc.assert(
      fc.asyncProperty(resource, pathSegment, queryString, fc.boolean(), async (name, segment, query, authorised) => {
        const before = await state();
        const headers: Record<string, string> = authorised ? { authorization: `Bearer ${merchant.api_key}` } : {};
        const response = await call(`/v1/${name}/${segment}?${query}`, { headers });
        await expectCleanRefusal(response, [200, 304, 400, 401, 404]);
        expect(await state()).toBe(before);
      }),
      { numRuns: RUNS },
    );
  });

  it("status API: arbitrary batch requests never 5xx; without the key nothing changes", async () => {
    const batchBody = fc.oneof(
      anyBody,
      fc
        .record({
          kind: fc.constantFrom("sync", "refresh", "other"),
          transaction_ids: fc.array(fc.string({ maxLength: 70 }), { maxLength: 5 }),
        })
        .map((v) => JSON.stringify(v)),
    );
    await fc.assert(
      fc.asyncProperty(
        batchBody,
        fc.boolean(),
        fc.dictionary(headerName, headerValue, { maxKeys: 3 }),
        async (body, authorised, headers) => {
          const before = await state();
          const response = await call("/v1/batches", {
            method: "POST",
            headers: { ...headers, authorization: authorised ? `Bearer ${merchant.api_key}` : "Bearer sre_0011223344556677_nope" },
            body,
          });
          await expectCleanRefusal(response, authorised ? [202, 400, 409, 413, 429] : [401]);
          if (response.status !== 202) expect(await state()).toBe(before);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("admin API: arbitrary bodies and queries never 5xx on any route; without the token nothing changes", async () => {
    const id = merchant.merchant.id;
    const route = fc.constantFrom(
      ["POST", "/admin/merchants"],
      ["GET", `/admin/merchants/${id}`],
      ["PATCH", `/admin/merchants/${id}`],
      ["POST", `/admin/merchants/${id}/api-keys`],
      ["DELETE", `/admin/merchants/${id}/api-keys/${merchant.api_key_id}`],
      ["POST", `/admin/merchants/${id}/webhook-credential`],
      ["POST", `/admin/merchants/${id}/fulfillment-secret`],
      ["GET", "/admin/reseal/rsl_0"],
      ["GET", "/admin/reconciliation/runs"],
      ["GET", "/admin/audit"],
      ["POST", "/admin/dead-letters/redrive"],
      ["GET", "/admin/dead-letters"],
    );
    await fc.assert(
      fc.asyncProperty(route, anyBody, fc.boolean(), queryString, async ([method, path], body, authorised, query) => {
        const before = await state();
        const response = await call(`${path}?${query}`, {
          method,
          headers: authorised ? { ...ADMIN } : { authorization: "Bearer not-the-token" },
          body: method === "GET" || method === "DELETE" ? undefined : body,
        });
        await expectCleanRefusal(response, authorised ? [200, 201, 400, 404, 409, 413, 422] : [401]);
        if (!authorised || response.status >= 400) expect(await state()).toBe(before);
      }),
      { numRuns: RUNS },
    );
  });
});
