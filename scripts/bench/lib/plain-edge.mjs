// The ingest baseline of issue 12: a framework-free Worker (a plain `fetch` handler, no Hono, no drizzle) doing the
// same work per delivery as the edge of src/routes/webhooks.ts: the merchant's Basic credential checked against a
// directory held in memory (loaded from the same D1 table with one raw query, refreshed every 60 s), SHA-256 and
// constant-time compares, the per-merchant WEBHOOK_LIMITER, the 64 KiB body cap, the same zod schema, the merchant's
// backlog gate (one Durable Object call), one JSON log line and the WEBHOOKS queue send (or, past the merchant's queue
// share, the edge's parking: one D1 batch). Bundled by esbuild into the bench's build directory and served by the same workerd;
// anything that is not a delivery (the admin API used to register the merchant) goes to the real worker.
import { backlogLimit } from "../../../src/ingest/backlog.ts";
import { deliveryBodySchema, MAX_DELIVERY_BYTES } from "../../../src/ingest/delivery.ts";
import worker from "./index.js";

export * from "./index.js";

const REFRESH_MS = 60_000;
const PREFIX = "/webhooks/smart-router/";
const encoder = new TextEncoder();
let directory = { byId: new Map(), loadedAt: -Infinity };

async function credentials(env, now) {
  if (now - directory.loadedAt < REFRESH_MS) return directory.byId;
  const { results } = await env.DB.prepare(
    "SELECT id, webhook_username, webhook_password_hash, smart_router_project_id, rate_limits FROM merchants",
  ).all();
  const entry = (r) => ({
    username: r.webhook_username,
    hash: r.webhook_password_hash,
    backlog: backlogLimit(r.smart_router_project_id, r.rate_limits ? JSON.parse(r.rate_limits) : null),
  });
  directory = { byId: new Map(results.map((r) => [r.id, entry(r)])), loadedAt: now };
  return directory.byId;
}

function equal(a, b) {
  const left = encoder.encode(a);
  const right = encoder.encode(b);
  if (left.byteLength !== right.byteLength) return crypto.subtle.timingSafeEqual(left, left) && false;
  return crypto.subtle.timingSafeEqual(left, right);
}

async function sha256Hex(text) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
  let hex = "";
  for (const byte of digest) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

const error = (status, code, message, headers = {}) =>
  Response.json({ error: { code, message, request_id: crypto.randomUUID() } }, { status, headers });

async function readCapped(request) {
  if (Number(request.headers.get("content-length") ?? 0) > MAX_DELIVERY_BYTES) return null;
  const text = await request.text();
  return encoder.encode(text).byteLength > MAX_DELIVERY_BYTES ? null : text;
}

/** The edge's parking of one delivery (ingest/parking.ts parkDeliveries, wake-up due in 1 s); false when D1 refused. */
async function parked(env, message) {
  const now = Date.now();
  const at = new Date(now).toISOString();
  try {
    const [, booked] = await env.DB.batch([
      env.DB.prepare(
        "INSERT INTO parked_deliveries (merchant_id, delivery_id, body, parked_at) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET claimed_until = NULL",
      ).bind(message.merchant_id, message.delivery_id, JSON.stringify(message), at),
      env.DB.prepare(
        "INSERT INTO parked_wakeups (merchant_id, due_at) VALUES (?, ?) ON CONFLICT (merchant_id) DO UPDATE SET due_at = excluded.due_at WHERE parked_wakeups.due_at < ? RETURNING merchant_id",
      ).bind(message.merchant_id, new Date(now + 1000).toISOString(), at),
    ]);
    if (booked.results.length > 0) {
      await env.WEBHOOKS.send(
        { v: 1, kind: "resume_parked", merchant_id: message.merchant_id },
        { contentType: "json", delaySeconds: 1 },
      ).catch(() => {});
    }
    return true;
  } catch {
    return false;
  }
}

async function deliver(request, env, merchantId) {
  const started = Date.now();
  const expected = (await credentials(env, started)).get(merchantId) ?? { username: "\u0000absent", hash: "0".repeat(64) };
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(request.headers.get("authorization") ?? "")?.[1];
  let user = "";
  let password = "";
  if (basic) {
    const decoded = atob(basic);
    const colon = decoded.indexOf(":");
    if (colon >= 0) [user, password] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
  }
  const hashOk = equal(await sha256Hex(password), expected.hash);
  if (!(equal(user, expected.username) && hashOk)) return error(401, "unauthorized", "missing or invalid webhook credential");
  const { success } = await env.WEBHOOK_LIMITER.limit({ key: merchantId });
  if (!success) return error(429, "rate_limited", "too many deliveries for this merchant", { "Retry-After": "60" });
  const text = await readCapped(request);
  if (text === null) return error(413, "payload_too_large", `body exceeds ${MAX_DELIVERY_BYTES} bytes`);
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    return error(400, "invalid_body", "body is not valid JSON");
  }
  const parsed = deliveryBodySchema.safeParse(json);
  if (!parsed.success || typeof json !== "object" || json === null || Array.isArray(json)) {
    return error(400, "invalid_body", "body must be a JSON object with an event_id");
  }
  const receivedAt = new Date().toISOString();
  const admission = await env.DELIVERY_GATE.get(env.DELIVERY_GATE.idFromName(merchantId)).admit(expected.backlog, receivedAt);
  if (admission === "refuse")
    return error(429, "rate_limited", "too many deliveries of this merchant wait to be verified", { "Retry-After": "60" });
  const deliveryId = crypto.randomUUID();
  const message = {
    v: 1,
    merchant_id: merchantId,
    event_id: parsed.data.event_id,
    event_type: parsed.data.event_type,
    received_at: receivedAt,
    delivery_id: deliveryId,
  };
  try {
    // Past the merchant's queue share the edge parks the delivery (src/ingest/hand-over.ts): the same D1 batch here.
    if (admission !== "park" || !(await parked(env, message))) await env.WEBHOOKS.send(message, { contentType: "json" });
  } catch {
    return error(503, "service_unavailable", "delivery could not be queued; retry later", { "Retry-After": "30" });
  }
  // As the edge (src/routes/webhooks.ts): an enqueued delivery logs no line.
  return Response.json({ received: true });
}

export default {
  fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    if (request.method === "POST" && pathname.startsWith(PREFIX)) return deliver(request, env, pathname.slice(PREFIX.length));
    return worker.fetch(request, env, ctx);
  },
};
