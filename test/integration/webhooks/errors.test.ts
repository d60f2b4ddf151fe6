import { describe, expect, it } from "vitest";
import { appWithRefusingQueue } from "../../support/app";
import { basic, call, createMerchant, deliver } from "../../support/fixtures";

type Envelope = { error: { code: string; message: string; request_id: string } };

async function expectError(response: Response, status: number, code: string) {
  expect(response.status).toBe(status);
  const body = (await response.json()) as Envelope;
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(body.error.request_id.length).toBeGreaterThan(0);
  return body;
}

describe("webhook edge: bad input", async () => {
  const merchant = await createMerchant();

  it.each([
    ["empty body", ""],
    ["not JSON", "event_id=ev_1"],
    ["a JSON array", '[{"event_id":"ev_1"}]'],
    ["a JSON string", '"ev_1"'],
    ["null", "null"],
    ["missing event_id", '{"event_type":"transaction.captured"}'],
    ["event_id not ev_", '{"event_id":"tr_123"}'],
    ["event_id a number", '{"event_id":12}'],
    ["event_id 10 KB long", JSON.stringify({ event_id: `ev_${"a".repeat(10_000)}` })],
    ["event_id with unicode", '{"event_id":"ev_ünïcødé"}'],
    ["event_id with control characters", '{"event_id":"ev_a\\u0000b\\nc"}'],
    ["invalid UTF-8", new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])],
  ])("400 for %s", async (_name, body) => {
    const sent = await call(merchant.webhook.path, {
      method: "POST",
      headers: { authorization: basic(merchant.webhook.username, merchant.webhook.password) },
      body,
    });
    await expectError(sent, 400, "invalid_body");
  });

  it("413 for a body over 64 KiB", async () => {
    const response = await deliver(merchant, JSON.stringify({ event_id: "ev_1", pad: "x".repeat(70_000) }));
    await expectError(response, 413, "payload_too_large");
  });

  it("413 from a declared Content-Length over 64 KiB, before reading the body", async () => {
    const response = await deliver(merchant, '{"event_id":"ev_1"}', { "content-length": "10000000" });
    await expectError(response, 413, "payload_too_large");
  });

  it("413 for a streamed body without Content-Length that grows past the cap", async () => {
    const chunk = new TextEncoder().encode("x".repeat(16 * 1024));
    let sentChunks = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        sentChunks += 1;
        if (sentChunks > 64) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const response = await call(merchant.webhook.path, {
      method: "POST",
      headers: { authorization: basic(merchant.webhook.username, merchant.webhook.password) },
      body: stream,
      // @ts-expect-error: `duplex` is required by fetch for streamed bodies but missing from RequestInit's types.
      duplex: "half",
    });
    await expectError(response, 413, "payload_too_large");
    // The reader stopped soon after the cap instead of buffering all 1 MiB.
    expect(sentChunks).toBeLessThan(64);
  });

  it("503 with Retry-After when the queue refuses, never 2xx", async () => {
    const app = appWithRefusingQueue();
    const response = await app.fetch(merchant.webhook.path, {
      method: "POST",
      headers: { authorization: basic(merchant.webhook.username, merchant.webhook.password) },
      body: '{"event_id":"ev_refused"}',
    });
    await expectError(response, 503, "service_unavailable");
    expect(Number(response.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("404 for GET on the webhook path (only POST exists)", async () => {
    const response = await call(merchant.webhook.path);
    expect(response.status).toBe(404);
  });
});
