import { exports } from "cloudflare:workers";
import { expect } from "vitest";
import { ADMIN, type CreatedMerchant, call, createMerchant, uniqueId } from "./fixtures";

/** The Smart Router emulator every outbound call of the worker reaches in tests (see vitest.config.ts). */
export const SANDBOX = "http://smart-router.sandbox";

/**
 * A fulfilment sink of the emulator, as a merchant's `fulfillment_url`: https with a DNS host name, as production
 * requires (the outbound service answers whatever the scheme and host).
 */
export const sinkUrl = (name: string) => `https://smart-router.sandbox/_sandbox/sink/${name}`;

async function sandboxCall<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const response = await fetch(`${SANDBOX}${path}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: { "content-type": "application/json" },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`sandbox ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

export interface SandboxTransaction {
  id: string;
  status: string;
  amount: string;
  captured_amount: string;
  refunded_amount: string;
  available_amount: string;
  authorized_amount: string;
  [field: string]: unknown;
}

/** A merchant registered with the service, its Smart Router sandbox project, and the webhook endpoint between them. */
export interface Shop {
  merchant: CreatedMerchant;
  projectId: string;
  /** The project's Smart Router secret key, as registered in the emulator. */
  secretKey: string;
  /** Creates a payment in the emulator (card number or APM); Smart Router then fires its events. */
  pay(input: Record<string, unknown>): Promise<SandboxTransaction>;
  /** A status-only change at Smart Router: metadata or error fields edited, no operation appended. */
  edit(transactionId: string, body: Record<string, unknown>): Promise<unknown>;
  act(transactionId: string, action: "capture" | "void" | "refund" | "complete" | "fail" | "advance", body?: unknown): Promise<unknown>;
  truth(): Promise<{
    transactions: SandboxTransaction[];
    events: { id: string; name: string; transaction_id: string; status: string; fired_at: string }[];
  }>;
  counters(): Promise<Record<string, unknown>>;
  settings(patch: Record<string, unknown>): Promise<unknown>;
  /** Stores a scripted event: any snapshot Smart Router could send, readable by fetch-back (sandbox/README.md). */
  script(input: {
    name: string;
    transaction: Record<string, unknown>;
    fired_at?: string;
    read_delay_ms?: number;
  }): Promise<{ id: string; name: string }>;
  /** Carries every due webhook delivery to the worker and reports the answers back, until none is left. */
  relay(options?: { rounds?: number; shuffle?: boolean }): Promise<number>;
}

/** Every test card of smart-router.md §7. */
export const TEST_CARDS = [
  "4242424242424242",
  "4000000000000002",
  "4000000000000010",
  "4000000000000069",
  "4000000000000200",
  "4000000000000309",
  "4000000000004004",
  "4000000000000077",
  "4000000000000101",
] as const;

/** Rate limits so high neither Smart Router nor our pacer ever waits: for tests about ordering, not pacing. */
const UNLIMITED = 1_000_000;

export async function openShop(
  options: { fulfillment?: boolean; settings?: Record<string, unknown>; unlimited?: boolean; webhooks?: boolean } = {},
): Promise<Shop> {
  const projectId = `test-proj_${uniqueId("p").replaceAll("-", "")}`;
  const secretKey = `sk_${crypto.randomUUID()}`;
  const rates = options.unlimited ? { rates: { primary: UNLIMITED, events: UNLIMITED, sandbox: UNLIMITED, burst: 1000 } } : {};
  await sandboxCall("/_sandbox/projects", {
    body: { project_id: projectId, secret_key: secretKey, ...rates, ...(options.settings ?? {}) },
  });
  const sinkName = projectId;
  const merchant = await createMerchant({
    smart_router: { project_id: projectId, secret_key: secretKey },
    ...(options.fulfillment ? { fulfillment_url: sinkUrl(sinkName) } : {}),
  });
  if (options.unlimited) {
    const limits = { primary_rpm: UNLIMITED, events_rpm: UNLIMITED, sandbox_rpm: UNLIMITED };
    await call(`/admin/merchants/${merchant.merchant.id}`, {
      method: "PATCH",
      headers: ADMIN,
      body: JSON.stringify({ rate_limits: limits }),
    });
  }
  const { username, password, path } = merchant.webhook;
  if (options.webhooks !== false) {
    await sandboxCall(`/_sandbox/projects/${projectId}/webhooks`, { body: { url: `https://${username}:${password}@edge.test${path}` } });
  }

  const shop: Shop = {
    merchant,
    projectId,
    secretKey,
    pay: async (input) =>
      (await sandboxCall<{ transaction: SandboxTransaction }>(`/_sandbox/projects/${projectId}/transactions`, { body: input })).transaction,
    edit: (transactionId, body) => sandboxCall(`/_sandbox/projects/${projectId}/transactions/${transactionId}`, { method: "PATCH", body }),
    act: (transactionId, action, body = {}) =>
      sandboxCall(`/_sandbox/projects/${projectId}/transactions/${transactionId}/${action}`, { body }),
    truth: () => sandboxCall(`/_sandbox/projects/${projectId}/truth`),
    counters: async () => (await sandboxCall<{ counters: Record<string, unknown> }>(`/_sandbox/projects/${projectId}/counters`)).counters,
    settings: (patch) => sandboxCall(`/_sandbox/projects/${projectId}`, { method: "PATCH", body: patch }),
    script: async (input) =>
      (await sandboxCall<{ event: { id: string; name: string } }>(`/_sandbox/projects/${projectId}/events`, { body: input })).event,
    async relay({ rounds = 50, shuffle = false } = {}) {
      let carried = 0;
      for (let round = 0; round < rounds; round++) {
        const { deliveries } = await sandboxCall<{ deliveries: RelayedDelivery[] }>(`/_sandbox/deliveries/claim?project=${projectId}`, {
          body: {},
        });
        if (deliveries.length === 0) {
          // Emulated time runs on timers: give pending deliveries and retries a moment to come due.
          await new Promise((resolve) => setTimeout(resolve, 20));
          continue;
        }
        const order = shuffle ? [...deliveries].sort(() => Math.random() - 0.5) : deliveries;
        for (const delivery of order) {
          const response = await exports.default.fetch(
            new Request(delivery.url, { method: "POST", headers: delivery.headers, body: delivery.body }),
          );
          await response.body?.cancel();
          await sandboxCall(`/_sandbox/deliveries/${delivery.id}/result`, { body: { status: response.status } });
          carried += 1;
        }
      }
      return carried;
    },
  };
  return shop;
}

interface RelayedDelivery {
  id: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** Polls until `check` passes (queue consumers run asynchronously), failing with the last assertion error. */
export async function eventually<T>(check: () => Promise<T>, { timeoutMs = 10_000, intervalMs = 50 } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}

export { expect };
