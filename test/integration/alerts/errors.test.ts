import { describe, expect, it } from "vitest";
import { ADMIN, call, createMerchant } from "../../support/fixtures";
import { getJson, getWithKey } from "../../support/status-api";
import { seedAlert } from "./support";

async function expectError(response: Response, status: number, code: string, message: RegExp) {
  expect(response.status).toBe(status);
  const body = (await response.json()) as { error: { code: string; message: string; request_id: string } };
  expect(body).toEqual({ error: { code, message: expect.stringMatching(message), request_id: expect.any(String) } });
}

describe("GET /v1/alerts refusals", () => {
  it("answers a malformed query with a 400 envelope naming the parameter", async () => {
    const merchant = await createMerchant();
    const cases: [string, RegExp][] = [
      ["state=closed", /state must be one of: open, all/],
      ["state=open&state=all", /state must be given once/],
      ["limit=0", /limit must be an integer from 1 to 100/],
      ["limit=101", /limit must be an integer from 1 to 100/],
      ["limit=ten", /limit must be an integer from 1 to 100/],
      ["kind=apm_pending", /unknown query parameter "kind"; allowed: state, limit, cursor/],
    ];
    for (const [query, message] of cases)
      await expectError(await getWithKey(`/v1/alerts?${query}`, merchant.api_key), 400, "invalid_query", message);
  });

  it("refuses a cursor it did not issue, and one of a list with another state", async () => {
    const merchant = await createMerchant();
    await expectError(await getWithKey("/v1/alerts?cursor=not-a-cursor", merchant.api_key), 400, "invalid_cursor", /cursor is malformed/);
    for (let i = 0; i < 2; i++) await seedAlert(merchant.merchant.id);
    const page = await getJson<{ next_cursor: string | null }>("/v1/alerts?state=all&limit=1", merchant.api_key);
    expect(page.next_cursor).toEqual(expect.any(String));
    await expectError(
      await getWithKey(`/v1/alerts?state=open&cursor=${page.next_cursor}`, merchant.api_key),
      400,
      "invalid_cursor",
      /different state/,
    );
  });

  it("answers 401 without a valid API key", async () => {
    await expectError(await call("/v1/alerts"), 401, "unauthorized", /API key/);
    await expectError(await getWithKey("/v1/alerts", "sre_0000000000000000_nope"), 401, "unauthorized", /API key/);
  });
});

describe("PATCH /admin/merchants/{id} alerts refusals", () => {
  it("answers invalid alert settings with a 400 naming the field, and changes nothing", async () => {
    const merchant = await createMerchant();
    const cases: [unknown, RegExp][] = [
      [{ apm_pending_minutes: 0 }, /alerts\.apm_pending_minutes/],
      [{ authorized_uncaptured_hours: 1.5 }, /alerts\.authorized_uncaptured_hours/],
      [{ forged_per_hour: "50" }, /alerts\.forged_per_hour/],
      [{ fulfillment_failing_minutes: 100_000 }, /alerts\.fulfillment_failing_minutes/],
      [{ page_me: true }, /page_me/],
      [{ url: "http://alerts.example.com/hook" }, /alerts\.url.*https/],
      [{ url: "https://10.0.0.1/hook" }, /alerts\.url.*IP address/],
      [{ url: "https://user:pass@alerts.example.com/hook" }, /alerts\.url.*user info/],
      ["often", /alerts/],
    ];
    for (const [alerts, message] of cases) {
      const response = await call(`/admin/merchants/${merchant.merchant.id}`, {
        method: "PATCH",
        headers: ADMIN,
        body: JSON.stringify({ alerts }),
      });
      await expectError(response, 400, "invalid_body", message);
    }
    const shown = (await (await call(`/admin/merchants/${merchant.merchant.id}`, { headers: ADMIN })).json()) as {
      merchant: { alerts: { url: string | null; apm_pending_minutes: number } };
    };
    expect(shown.merchant.alerts).toMatchObject({ url: null, apm_pending_minutes: 60 });
  });
});
