import { afterEach, describe, expect, it, vi } from "vitest";
import { call, createMerchant } from "../../support/fixtures";

/** The worker's `request` lines while `act` runs, parsed, and every line's text (for what must not appear). */
async function requestLines(act: () => Promise<unknown>): Promise<{ lines: Record<string, unknown>[]; text: string }> {
  const all: string[] = [];
  for (const level of ["log", "warn", "error", "info", "debug"] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      all.push(args.map(String).join(" "));
    });
  }
  await act();
  const lines = all.filter((line) => line.includes('"message":"request"')).map((line) => JSON.parse(line) as Record<string, unknown>);
  return { lines, text: all.join("\n") };
}

describe("access log: a line for what needs a look, none for a fast success", () => {
  afterEach(() => vi.restoreAllMocks());

  it("logs a 404, a 400 and a 401 with method, path, status and time, and nothing for a 200", async () => {
    const merchant = await createMerchant();
    const auth = { authorization: `Bearer ${merchant.api_key}` };
    const { lines, text } = await requestLines(async () => {
      expect((await call("/v1/transactions?limit=5", { headers: auth })).status).toBe(200);
      expect((await call("/v1/transactions/tx_absent", { headers: auth })).status).toBe(404);
      expect((await call("/v1/transactions?bogus=ord_secret_ref", { headers: auth })).status).toBe(400);
      expect((await call("/v1/transactions", { headers: { authorization: "Bearer sk_wrong_key_123" } })).status).toBe(401);
    });
    expect(lines).toEqual([
      expect.objectContaining({ level: "info", method: "GET", path: "/v1/transactions/tx_absent", status: 404, ms: expect.any(Number) }),
      expect.objectContaining({ level: "info", method: "GET", path: "/v1/transactions", status: 400 }),
      expect.objectContaining({ level: "info", method: "GET", path: "/v1/transactions", status: 401 }),
    ]);
    expect(lines.every((line) => typeof line.request_id === "string" && line.request_id !== "")).toBe(true);
    // Neither the query string nor a credential is logged.
    for (const secret of ["ord_secret_ref", merchant.api_key, "sk_wrong_key_123"]) expect(text).not.toContain(secret);
  });

  it("leaves the webhook edge to its own line: a refused delivery logs webhook.delivery, no request line", async () => {
    const merchant = await createMerchant();
    const { lines, text } = await requestLines(async () => {
      const response = await call(merchant.webhook.path, { method: "POST", body: JSON.stringify({ event_id: "ev_1" }) });
      expect(response.status).toBe(401);
    });
    expect(lines).toEqual([]);
    expect(text).toContain('"webhook.delivery"');
  });
});
