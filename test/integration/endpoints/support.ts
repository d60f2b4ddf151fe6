import { expect } from "vitest";
import { type CreatedMerchant, call } from "../../support/fixtures";
import { SANDBOX, sinkUrl } from "../../support/sandbox";

export interface ShownEndpoint {
  id: string;
  url: string;
  events: string[];
  description: string;
  status: "enabled" | "paused" | "disabled";
  created_at: string;
}

export interface ShownMessage {
  id: string;
  type: string;
  sequence: number;
  transaction_id: string;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  last_http_status: number | null;
  created_at: string;
  delivered_at: string | null;
}

export interface ShownReplay {
  id: string;
  status: "queued" | "running" | "completed" | "cancelled";
  total: number;
  sent: number;
  failed: number;
  dry_run: boolean;
  error?: string;
}

/** A request to the status API with the merchant's API key (JSON body when given). */
export function api(merchant: CreatedMerchant | string, path: string, init: { method?: string; body?: unknown } = {}): Promise<Response> {
  const key = typeof merchant === "string" ? merchant : merchant.api_key;
  return call(path, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
}

/** Calls and parses, failing loudly on another status. */
export async function apiJson<T>(
  merchant: CreatedMerchant,
  path: string,
  init: { method?: string; body?: unknown } = {},
  status = 200,
): Promise<T> {
  const response = await api(merchant, path, init);
  const text = await response.text();
  if (response.status !== status) throw new Error(`${init.method ?? "GET"} ${path}: expected ${status}, got ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

/** Creates an endpoint on an emulator sink named `sink`. */
export async function createEndpoint(merchant: CreatedMerchant, sink: string, events: string[] = ["*"]) {
  return apiJson<{ endpoint: ShownEndpoint; signing_secret: string }>(
    merchant,
    "/v1/endpoints",
    { body: { url: sinkUrl(sink), events } },
    201,
  );
}

export interface SinkRequest {
  headers: Record<string, string>;
  body: string;
  json: {
    type: string;
    timestamp: string;
    data: { merchant_id: string; sequence: number; previous_status: string | null; transaction: { id: string; status: string } };
  };
}

/** What an emulator sink received, oldest first. */
export async function sinkRequests(name: string): Promise<SinkRequest[]> {
  const response = await fetch(`${SANDBOX}/_sandbox/sink/${name}`);
  return ((await response.json()) as { requests: SinkRequest[] }).requests;
}

/** Makes a sink answer `status` (for `times` requests, or until changed). */
export async function sinkAnswers(name: string, status: number, times?: number): Promise<void> {
  const response = await fetch(`${SANDBOX}/_sandbox/sink/${name}`, {
    method: "PUT",
    body: JSON.stringify({ status, ...(times ? { times } : {}) }),
  });
  expect(response.status).toBe(200);
}

/** The endpoint's messages through the API, every page, oldest first. */
export async function messagesOf(merchant: CreatedMerchant, endpointId: string, filters = ""): Promise<ShownMessage[]> {
  const all: ShownMessage[] = [];
  let cursor: string | null = null;
  // Ends on the last page (next_cursor null).
  do {
    const query: string = `limit=100${filters}${cursor ? `&cursor=${cursor}` : ""}`;
    const page: { messages: ShownMessage[]; next_cursor: string | null } = await apiJson(
      merchant,
      `/v1/endpoints/${endpointId}/messages?${query}`,
    );
    all.push(...page.messages);
    cursor = page.next_cursor;
  } while (cursor !== null);
  return all.reverse();
}

/** Per transaction, the (sequence, type) pairs of the requests in the order the sink received them. */
export function receivedByTransaction(requests: readonly SinkRequest[]): Map<string, { sequence: number; type: string; id: string }[]> {
  const lanes = new Map<string, { sequence: number; type: string; id: string }[]>();
  for (const request of requests) {
    const transactionId = request.json.data.transaction.id;
    lanes.set(transactionId, [
      ...(lanes.get(transactionId) ?? []),
      { sequence: request.json.data.sequence, type: request.json.type, id: request.headers["webhook-id"] ?? "" },
    ]);
  }
  return lanes;
}

/** Verifies a Standard Webhooks signature as a merchant's receiver would, independently of our signing code. */
export async function verifies(secret: string, request: Pick<SinkRequest, "headers" | "body">): Promise<boolean> {
  const raw = Uint8Array.from(atob(secret.replace(/^whsec_/, "")), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  const signed = `${request.headers["webhook-id"]}.${request.headers["webhook-timestamp"]}.${request.body}`;
  for (const signature of (request.headers["webhook-signature"] ?? "").split(" ")) {
    const [version, value] = signature.split(",");
    if (version !== "v1" || !value) continue;
    const mac = Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
    if (await crypto.subtle.verify("HMAC", key, mac, new TextEncoder().encode(signed))) return true;
  }
  return false;
}
