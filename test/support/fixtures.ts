import { env, exports } from "cloudflare:workers";

export const ADMIN = { authorization: `Bearer ${env.ADMIN_TOKEN}` };

let counter = 0;
/** A merchant id unique within the run, since storage is shared by the tests of a file. */
export function uniqueId(prefix = "m"): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}`;
}

/** Calls the worker's own fetch handler, as the outside world would. */
export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(new Request(`https://edge.test${path}`, init));
}

export function basic(username: string, password: string): string {
  return `Basic ${btoa(`${username}:${password}`)}`;
}

export interface CreatedMerchant {
  merchant: { id: string; name: string };
  api_key: string;
  api_key_id: string;
  webhook: { path: string; username: string; password: string };
  fulfillment: { signing_secret: string };
}

/**
 * Creates the Smart Router project in the emulator: registering a merchant makes one call with its credentials, which
 * Smart Router must accept. A project that exists already (openShop made it) is left as it is.
 */
export async function registerSandboxProject(credentials: { project_id: string; secret_key: string }): Promise<void> {
  const response = await fetch("http://smart-router.sandbox/_sandbox/projects", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(credentials),
  });
  if (response.status !== 201 && response.status !== 409) throw new Error(`sandbox project: ${response.status} ${await response.text()}`);
  await response.body?.cancel();
}

/** Registers a merchant through the admin API. */
export async function createMerchant(overrides: Record<string, unknown> = {}): Promise<CreatedMerchant> {
  const id = uniqueId();
  const body = {
    id,
    name: `Merchant ${id}`,
    smart_router: { project_id: `test-proj_${id.replaceAll("-", "")}`, secret_key: `sk_test_${id}` },
    ...overrides,
  };
  await registerSandboxProject(body.smart_router as { project_id: string; secret_key: string });
  const response = await call("/admin/merchants", {
    method: "POST",
    headers: { ...ADMIN, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (response.status !== 201) throw new Error(`createMerchant: ${response.status} ${await response.text()}`);
  return response.json();
}

/** Posts a webhook delivery with the merchant's Basic credential. */
export function deliver(merchant: CreatedMerchant, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return call(merchant.webhook.path, {
    method: "POST",
    headers: { authorization: basic(merchant.webhook.username, merchant.webhook.password), ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}
