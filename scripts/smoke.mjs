// `npm run smoke -- --url <worker> --admin-token … --project test-proj_… --secret-key … [--api-url …] [--sink-url …]
// [--card-token …]`: proves a deployed worker and a Smart Router sandbox project work together. It registers a temporary
// merchant on the project, prints the webhook URL to paste into the dashboard, creates a sandbox payment, waits for a
// webhook delivery of it to be applied (status API and timeline) and for its fulfilment to reach a sink (checking the
// Standard Webhooks signature), prints each step with its time, and disables the merchant at the end. Sandbox only.
import { createHmac } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:http";
import { createInterface } from "node:readline/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

export const USAGE = `usage: npm run smoke -- --url <worker URL> --admin-token <ADMIN_TOKEN> --project <test-proj_…> --secret-key <key>
  --api-url     Smart Router API base URL (default https://api.processout.com; the local emulator's URL to test it)
  --sink-url    where the fulfilment goes (default: a server this script starts on 127.0.0.1, which only a worker
                allowing loopback fulfilment URLs, i.e. the local stack, can reach)
  --card-token  a sandbox card token (card_…) to pay with on the real API (cards are tokenized client-side)
  --no-wait     do not wait for Enter after printing the webhook URL
  --timeout     seconds to wait for each step (default 120)`;

export class SmokeError extends Error {}

const SANDBOX_PREFIX = "test-proj_";
const POLL_MS = 500;

/** The options of a command line; a SmokeError for anything missing, and for a project that is not a sandbox one. */
export function parseSmokeArgs(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: "string" },
      "admin-token": { type: "string" },
      project: { type: "string" },
      "secret-key": { type: "string" },
      "api-url": { type: "string", default: "https://api.processout.com" },
      "sink-url": { type: "string" },
      "card-token": { type: "string" },
      "no-wait": { type: "boolean", default: false },
      timeout: { type: "string", default: "120" },
    },
  });
  for (const name of ["url", "admin-token", "project", "secret-key"]) if (!values[name]) throw new SmokeError(`--${name} is required`);
  // A live project would take a real payment: smart-router.md §4, sandbox projects are `test-proj_…`.
  if (!values.project.startsWith(SANDBOX_PREFIX))
    throw new SmokeError(`${values.project} is not a sandbox project (${SANDBOX_PREFIX}…): smoke never runs against a live one`);
  return {
    ...values,
    url: values.url.replace(/\/$/, ""),
    "api-url": values["api-url"].replace(/\/$/, ""),
    timeoutMs: Number(values.timeout) * 1000,
  };
}

/** One JSON call; throws a SmokeError naming it unless the status is one of `ok`. */
async function call(url, { method, body, headers = {}, ok = [200, 201, 202] } = {}) {
  const response = await fetch(url, {
    method: method ?? (body === undefined ? "GET" : "POST"),
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!ok.includes(response.status))
    throw new SmokeError(`${method ?? (body === undefined ? "GET" : "POST")} ${url} → ${response.status} ${text.slice(0, 300)}`);
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** Polls `check` until it answers something truthy; a SmokeError naming `what` past the timeout. Ends by its deadline. */
async function until(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new SmokeError(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** A local fulfilment sink: records every POST (headers and body), answers 200. */
async function startSink() {
  const received = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      received.push({ headers: request.headers, body });
      response.writeHead(200).end("ok");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { url: `http://127.0.0.1:${server.address().port}/fulfilment`, received, close: () => server.close() };
}

/** Standard Webhooks: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed with the base64 after `whsec_`. */
export function signatureValid({ headers, body }, secret) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`).digest("base64");
  return String(headers["webhook-signature"] ?? "")
    .split(" ")
    .includes(`v1,${expected}`);
}

/** The temporary merchant's id: one per project, so a re-run reuses it (a project belongs to one merchant for good). */
export const merchantIdFor = (project) =>
  `smoke-${project
    .slice(SANDBOX_PREFIX.length)
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, "")}`.slice(0, 64);

/**
 * Registers the merchant on the project, or wakes the one a previous run left disabled: fresh API key, webhook password
 * and signing secret, the sink as fulfilment URL. A project claimed by another merchant is refused (409).
 */
async function openMerchant(o, sinkUrl) {
  const admin = (path, init = {}) => call(`${o.url}/admin${path}`, { ...init, headers: { authorization: `Bearer ${o["admin-token"]}` } });
  const id = merchantIdFor(o.project);
  const smart_router = { project_id: o.project, secret_key: o["secret-key"] };
  const existing = await admin(`/merchants/${id}`, { ok: [200, 404] });
  if (existing.status === 404) {
    const created = await admin("/merchants", {
      body: { id, name: "Smoke test (temporary)", smart_router, fulfillment_url: sinkUrl },
      ok: [201, 409],
    });
    if (created.status === 409)
      throw new SmokeError(
        `POST /admin/merchants → 409: ${created.body?.error?.message ?? "conflict"} (smoke needs a sandbox project no merchant uses)`,
      );
    const keyId = /^sre_([^_]+)_/.exec(created.body.api_key)?.[1];
    return {
      id,
      admin,
      apiKey: created.body.api_key,
      keyIds: keyId ? [keyId] : [],
      webhook: created.body.webhook,
      secret: created.body.fulfillment.signing_secret,
    };
  }
  await admin(`/merchants/${id}`, { method: "PATCH", body: { smart_router, fulfillment_url: sinkUrl } });
  const key = (await admin(`/merchants/${id}/api-keys`, { body: {} })).body.api_key;
  const webhook = (await admin(`/merchants/${id}/webhook-credential`, { body: { overlap_hours: 0 } })).body.webhook;
  const secret = (await admin(`/merchants/${id}/fulfillment-secret`, { body: { overlap_hours: 0 } })).body.fulfillment.signing_secret;
  return { id, admin, apiKey: key.key, keyIds: [key.id], webhook, secret };
}

/** There is no admin delete: the merchant is disabled instead (keys revoked, webhook password replaced, no fulfilment). */
async function closeMerchant(merchant) {
  for (const keyId of merchant.keyIds)
    await merchant.admin(`/merchants/${merchant.id}/api-keys/${keyId}`, { method: "DELETE", ok: [200, 404] });
  await merchant.admin(`/merchants/${merchant.id}/webhook-credential`, { body: { overlap_hours: 0 } });
  await merchant.admin(`/merchants/${merchant.id}`, { method: "PATCH", body: { fulfillment_url: null } });
}

/** Creates the payment: on the emulator through its control API, on the real API as an invoice captured with a card token. */
async function createPayment(o, emulator) {
  const amount = { amount: "1.00", currency: "EUR" };
  if (emulator) {
    const project = `${o["api-url"]}/_sandbox/projects/${o.project}`;
    return (await call(`${project}/transactions`, { body: { ...amount, card: "4242424242424242", name: "smoke test" } })).body.transaction
      .id;
  }
  if (!o["card-token"]) throw new SmokeError("--card-token is required against the real API (a sandbox card token, card_…)");
  const auth = { authorization: `Basic ${Buffer.from(`${o.project}:${o["secret-key"]}`).toString("base64")}`, "api-version": "1.4.0.0" };
  const invoice = (await call(`${o["api-url"]}/invoices`, { body: { ...amount, name: "smoke test" }, headers: auth })).body.invoice;
  const captured = await call(`${o["api-url"]}/invoices/${invoice.id}/capture`, { body: { source: o["card-token"] }, headers: auth });
  return captured.body.transaction?.id ?? invoice.transaction_id;
}

/** Prints the webhook URL; on the emulator registers it there (its control API stands in for the dashboard). */
async function wireWebhook(o, merchant, emulator, say) {
  const { username, password, path } = merchant.webhook;
  const worker = new URL(o.url);
  const url = `${worker.protocol}//${encodeURIComponent(username)}:${encodeURIComponent(password)}@${worker.host}${path}`;
  say(`     webhook URL for the dashboard (Settings → Webhooks): ${url}`);
  if (emulator) await call(`${o["api-url"]}/_sandbox/projects/${o.project}/webhooks`, { body: { url } });
  else if (!o["no-wait"] && process.stdin.isTTY) {
    const prompt = createInterface({ input: process.stdin, output: process.stdout });
    await prompt.question("     paste it into the sandbox project's dashboard, then press Enter ");
    prompt.close();
  }
}

/** Waits until the payment is applied from a webhook delivery (the timeline has one), then for its fulfilment at the sink. */
async function followPayment(o, merchant, transactionId, sink) {
  const status = (path) => call(`${o.url}${path}`, { headers: { authorization: `Bearer ${merchant.apiKey}` }, ok: [200, 404] });
  const applied = await until(
    `${transactionId} applied from a webhook`,
    async () => {
      const tx = (await status(`/v1/transactions/${transactionId}`)).body?.transaction;
      const timeline = (await status(`/v1/transactions/${transactionId}/timeline`)).body?.timeline ?? [];
      return tx?.status === "completed" && timeline.some((entry) => entry.kind === "delivery") ? tx : null;
    },
    o.timeoutMs,
  );
  const delivered = await until(
    "its fulfilment delivered",
    async () => ((await status(`/v1/transactions/${transactionId}`)).body?.transaction?.fulfillment?.status === "delivered" ? true : null),
    o.timeoutMs,
  );
  if (sink) {
    const notification = sink.received.find((r) => r.body.includes(transactionId));
    if (!notification) throw new SmokeError("the worker says delivered, but the sink received no notification for it");
    if (!signatureValid(notification, merchant.secret)) throw new SmokeError("the notification's webhook-signature does not verify");
  }
  return { applied, delivered };
}

/** Runs the named steps in order, one line each with the time since the start. */
async function steps(list, say) {
  const started = Date.now();
  for (const [name, run] of list) {
    await run();
    say(`  ✓ ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }
}

/** The whole run; answers the exit code (0 passed, 1 a step failed, 2 a usage error or a live project). */
export async function main(argv, say = console.log, complain = console.error) {
  let o;
  try {
    o = parseSmokeArgs(argv);
  } catch (error) {
    complain(`smoke: ${error.message}\n${USAGE}`);
    return 2;
  }
  const emulator = (await fetch(`${o["api-url"]}/_sandbox/health`).catch(() => null))?.status === 200;
  const sink = o["sink-url"] ? null : await startSink();
  const state = {};
  say(`smoke: ${o.url} with ${o.project} at ${o["api-url"]}${emulator ? " (the local emulator)" : ""}`);
  try {
    await steps(
      [
        [
          `merchant ${merchantIdFor(o.project)} registered`,
          async () => (state.merchant = await openMerchant(o, o["sink-url"] ?? sink.url)),
        ],
        ["webhook URL given", () => wireWebhook(o, state.merchant, emulator, say)],
        ["sandbox payment created", async () => (state.tx = await createPayment(o, emulator))],
        ["webhook applied, fulfilment delivered", () => followPayment(o, state.merchant, state.tx, sink)],
      ],
      say,
    );
    say(`smoke: passed (${state.tx})`);
    return 0;
  } catch (error) {
    if (!(error instanceof SmokeError)) throw error;
    complain(`smoke: failed: ${error.message}`);
    return 1;
  } finally {
    if (state.merchant) {
      await closeMerchant(state.merchant).catch((error) => complain(`smoke: disabling ${state.merchant.id} failed: ${error.message}`));
      say(
        `  merchant ${state.merchant.id} disabled (there is no admin delete): keys revoked, webhook password replaced, no fulfilment URL`,
      );
    }
    sink?.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
