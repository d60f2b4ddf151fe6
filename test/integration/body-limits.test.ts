import { describe, expect, it } from "vitest";
import { ADMIN, call, createMerchant } from "../support/fixtures";
import { shardedDb } from "../support/shards";

type Envelope = { error: { code: string; message: string } };

/** A body of `total` bytes of JSON-looking text, streamed in chunks without a Content-Length; counts what was read. */
function endlessBody(total = 10 * 1024 * 1024) {
  const chunk = new TextEncoder().encode(`{"pad":"${"x".repeat(16 * 1024)}`);
  const counter = { pulled: 0 };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (counter.pulled >= total) return controller.close();
      counter.pulled += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
  return { stream, counter };
}

describe("one body limit on every JSON route", async () => {
  const merchant = await createMerchant();
  const id = merchant.merchant.id;
  const merchantKey = { authorization: `Bearer ${merchant.api_key}` };
  const routes: [string, string, number, Record<string, string>][] = [
    ["POST", "/admin/merchants", 16 * 1024, ADMIN],
    ["PATCH", `/admin/merchants/${id}`, 16 * 1024, ADMIN],
    ["POST", `/admin/merchants/${id}/webhook-credential`, 16 * 1024, ADMIN],
    ["POST", "/admin/dead-letters/redrive", 16 * 1024, ADMIN],
    ["POST", "/v1/batches", 96 * 1024, merchantKey],
  ];

  it.each(routes)("%s %s: 413 just past its limit, whatever Content-Length says", async (method, path, limit, headers) => {
    const over = JSON.stringify({ pad: "x".repeat(limit) });
    const declared = await call(path, { method, headers: { ...headers, "content-type": "application/json" }, body: over });
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as Envelope).error.code).toBe("payload_too_large");
    // A stream of 10 MiB without a Content-Length: refused after reading little more than the limit.
    const { stream, counter } = endlessBody();
    const streamed = await call(path, { method, headers: { ...headers, "content-type": "application/json" }, body: stream });
    expect(streamed.status).toBe(413);
    expect(counter.pulled).toBeLessThan(limit + 512 * 1024);
  });

  it("POST /v1/batches without a valid key reads no body at all", async () => {
    const { stream, counter } = endlessBody();
    const response = await call("/v1/batches", { method: "POST", headers: { "content-type": "application/json" }, body: stream });
    expect(response.status).toBe(401);
    expect(counter.pulled).toBeLessThan(512 * 1024);
  });

  it("a body within the limit is validated as JSON whatever its Content-Type (none, text/plain)", async () => {
    for (const headers of [{}, { "content-type": "text/plain" }] as Record<string, string>[]) {
      const patched = await call(`/admin/merchants/${id}`, {
        method: "PATCH",
        headers: { ...ADMIN, ...headers },
        body: JSON.stringify({ name: "Plain" }),
      });
      expect(patched.status).toBe(200);
      const batch = await call("/v1/batches", {
        method: "POST",
        headers: { ...merchantKey, ...headers },
        body: JSON.stringify({ kind: "refresh", transaction_ids: ["tr_bodylimit1"] }),
      });
      expect(batch.status).toBe(202);
    }
    const row = await shardedDb.prepare("SELECT name FROM merchants WHERE id = ?").bind(id).first();
    expect(row).toEqual({ name: "Plain" });
  });

  it("invalid_body for a body that is empty, not JSON or not UTF-8, on admin and /v1 alike", async () => {
    for (const [method, path, , headers] of routes) {
      for (const body of ["{", new Uint8Array([0x7b, 0xff, 0x7d]), ...(path.endsWith("webhook-credential") ? [] : [""])]) {
        const response = await call(path, { method, headers, body });
        expect(response.status, `${method} ${path}`).toBe(400);
        expect(((await response.json()) as Envelope).error.code, `${method} ${path}`).toBe("invalid_body");
      }
    }
  });
});
