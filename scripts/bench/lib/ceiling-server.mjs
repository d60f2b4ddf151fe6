// The machine's ceiling for ingest: a minimal Node + Hono server doing what the worker's webhook route does, minus
// the platform, written the fast Node way: the same Basic credential check (SHA-256 of the password with node:crypto,
// constant-time compares, an unknown merchant takes the same path), the body read from the socket capped at 64 KiB,
// JSON-parsed and validated with the worker's own zod schema (imported from src/), and an in-memory enqueue.
// Run as its own process: `node ceiling-server.mjs '<json: {merchantId, username, passwordHash}>'`; prints {"port":…}.
import "./ts-resolve.mjs";
import { createHash, timingSafeEqual } from "node:crypto";
import { serve } from "@hono/node-server";
import { Hono } from "hono";

const { deliveryBodySchema, MAX_DELIVERY_BYTES } = await import("../../../src/ingest/delivery.ts");
const sha256Hex = (text) => createHash("sha256").update(text).digest("hex");

class BodyError extends Error {
  constructor(status, code) {
    super(code);
    this.status = status;
    this.code = code;
  }
}

/** Reads the request body straight from Node's socket, refusing past `maxBytes`; parses and validates it. */
async function readDelivery(incoming, maxBytes) {
  const declared = Number(incoming.headers["content-length"] ?? 0);
  if (declared > maxBytes) throw new BodyError(413, "payload_too_large");
  const chunks = [];
  let size = 0;
  for await (const chunk of incoming) {
    size += chunk.length;
    if (size > maxBytes) throw new BodyError(413, "payload_too_large");
    chunks.push(chunk);
  }
  let json;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks, size)));
  } catch {
    throw new BodyError(400, "invalid_body");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new BodyError(400, "invalid_body");
  const parsed = deliveryBodySchema.safeParse(json);
  if (!parsed.success) throw new BodyError(400, "invalid_body");
  return parsed.data;
}

const { merchantId: id, username, passwordHash } = JSON.parse(process.argv[2] ?? "{}");
const merchants = new Map([[id, { webhookUsername: username, webhookPasswordHash: passwordHash }]]);
const MERCHANT_ID = /^[a-z0-9_-]{1,64}$/;
const ABSENT = { webhookUsername: "\u0000absent", webhookPasswordHash: "0".repeat(64) };
const encoder = new TextEncoder();

function constantTimeEqual(a, b) {
  const left = encoder.encode(a);
  const right = encoder.encode(b);
  if (left.byteLength !== right.byteLength) {
    timingSafeEqual(left, left);
    return false;
  }
  return timingSafeEqual(left, right);
}

function parseBasic(authorization) {
  if (!authorization) return null;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
  if (!match?.[1]) return null;
  let decoded;
  try {
    decoded = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(atob(match[1]), (c) => c.charCodeAt(0)));
  } catch {
    return null;
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

// The in-memory queue; emptied past 100k messages (as if consumed) so memory stays bounded.
const queue = [];

const app = new Hono();
app.post("/webhooks/smart-router/:merchantId", async (c) => {
  const merchantId = c.req.param("merchantId");
  const row = MERCHANT_ID.test(merchantId) ? merchants.get(merchantId) : undefined;
  const expected = row ?? ABSENT;
  const presented = parseBasic(c.req.header("authorization")) ?? { username: "", password: "" };
  const usernameOk = constantTimeEqual(presented.username, expected.webhookUsername);
  const passwordOk = constantTimeEqual(sha256Hex(presented.password), expected.webhookPasswordHash);
  if (!(row && usernameOk && passwordOk)) {
    return c.json({ error: { code: "unauthorized" } }, 401, { "WWW-Authenticate": 'Basic realm="smart-router-webhooks"' });
  }
  let body;
  try {
    body = await readDelivery(c.env.incoming, MAX_DELIVERY_BYTES);
  } catch (error) {
    if (error instanceof BodyError) return c.json({ error: { code: error.code } }, error.status);
    throw error;
  }
  queue.push({
    v: 1,
    merchant_id: merchantId,
    event_id: body.event_id,
    event_type: body.event_type,
    received_at: new Date().toISOString(),
    delivery_id: crypto.randomUUID(),
  });
  if (queue.length >= 100_000) queue.length = 0;
  return c.json({ received: true }, 200);
});

const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info) => {
  process.stdout.write(`${JSON.stringify({ port: info.port })}\n`);
});
process.on("SIGTERM", () => {
  server.close();
  process.exit(0);
});
