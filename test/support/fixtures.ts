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

/** Registers a merchant through the admin API. */
export async function createMerchant(overrides: Record<string, unknown> = {}): Promise<CreatedMerchant> {
  const id = uniqueId();
  const response = await call("/admin/merchants", {
    method: "POST",
    headers: { ...ADMIN, "content-type": "application/json" },
    body: JSON.stringify({
      id,
      name: `Merchant ${id}`,
      smart_router: { project_id: `test-proj_${id.replaceAll("-", "")}`, secret_key: `sk_test_${id}` },
      ...overrides,
    }),
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
