import { env } from "cloudflare:workers";
import type { z } from "@hono/zod-openapi";
import { expect } from "vitest";
import type { Permit } from "../../../src/rate-limiter/limiter";
import type { timelineResponse } from "../../../src/timeline/api-schemas";
import { ADMIN, call } from "../../support/fixtures";
import { eventually, SANDBOX, type Shop } from "../../support/sandbox";
import { getJson } from "../../support/status-api";

export type Timeline = z.infer<typeof timelineResponse>["timeline"];
export type TimelineEntry = Timeline[number];

export interface Pipeline {
  from: string;
  to: string;
  deliveries_per_minute: { minute: string; count: number }[];
  outcomes: Record<"applied" | "stale" | "duplicate" | "rejected" | "pending" | "ignored", number>;
  lag_ms: { p50: number | null; p99: number | null };
  waiting: { pending_events: number; retries_scheduled: number };
  backlog: { source: "inbox"; count: number; oldest_received_at: string | null; oldest_age_seconds: number | null };
  webhook_queue: {
    backlog_count: number;
    backlog_bytes: number;
    oldest_message_at: string | null;
    oldest_age_seconds: number | null;
  } | null;
  dead_letters: number;
  backstop: { watermark: string | null; lag_seconds: number | null; last_run_at: string | null };
  reconciliation: { last_run_at: string | null; runs: number };
}

export interface Budget {
  project_id: string;
  buckets: {
    bucket: string;
    rate_per_minute: number;
    tokens_left: number;
    batch_rate_per_minute: number;
    batch_share: number;
    recent_429s: string[];
  }[];
  breaker: { state: "closed" | "open" | "half_open"; since: string | null };
}

interface ErrorBody {
  error: { code: string; message: string; request_id: string };
}

/** Headers of the console's admin sign-in acting as `merchantId` (no X-Merchant-Id when undefined). */
export function asAdmin(merchantId?: string, token: string = env.ADMIN_TOKEN): Record<string, string> {
  return { authorization: `Bearer ${token}`, ...(merchantId === undefined ? {} : { "x-merchant-id": merchantId }) };
}

/** GETs with any headers and parses JSON, failing loudly on an unexpected status. */
export async function getAs<T>(path: string, headers: Record<string, string>, status = 200): Promise<T> {
  const response = await call(path, { headers });
  if (response.status !== status) throw new Error(`GET ${path}: expected ${status}, got ${response.status} ${await response.text()}`);
  return response.json() as Promise<T>;
}

/** Expects the one error envelope with this status and code. */
export async function expectError(response: Response, status: number, code: string, label = ""): Promise<ErrorBody["error"]> {
  const text = await response.text();
  expect(response.status, `${label} ${text}`).toBe(status);
  const body = JSON.parse(text) as ErrorBody;
  expect(body.error, label).toMatchObject({ code, message: expect.any(String), request_id: expect.any(String) });
  return body.error;
}

export const timelineOf = async (apiKey: string, transactionId: string) =>
  (await getJson<{ timeline: Timeline }>(`/v1/transactions/${transactionId}/timeline`, apiKey)).timeline;

export const pipelineOf = async (apiKey: string, query = "") =>
  (await getJson<{ pipeline: Pipeline }>(`/v1/pipeline${query}`, apiKey)).pipeline;

export const budgetOf = async (apiKey: string) => (await getJson<{ budget: Budget }>("/v1/budget", apiKey)).budget;

/** The entries of one kind, narrowed. */
export function entriesOf<K extends TimelineEntry["kind"]>(timeline: Timeline, kind: K): Extract<TimelineEntry, { kind: K }>[] {
  return timeline.filter((entry): entry is Extract<TimelineEntry, { kind: K }> => entry.kind === kind);
}

/** The emulator's events of one payment. */
export async function eventsOfPayment(shop: Shop, transactionId: string) {
  return (await shop.truth()).events.filter((event) => event.transaction_id === transactionId);
}

/** Waits until the status API shows the payment in `status`. */
export function untilStatus(shop: Shop, transactionId: string, status: string) {
  return eventually(
    async () => {
      const { transaction } = await getJson<{ transaction: { status: string; fulfillment: { status: string } } }>(
        `/v1/transactions/${transactionId}`,
        shop.merchant.api_key,
      );
      expect(transaction.status).toBe(status);
      return transaction;
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
}

/** Makes the shop's fulfilment sink answer `status` to its next `times` notifications. */
export async function sinkAnswers(shop: Shop, status: number, times: number): Promise<void> {
  const response = await fetch(`${SANDBOX}/_sandbox/sink/${shop.projectId}`, { method: "PUT", body: JSON.stringify({ status, times }) });
  expect(response.status).toBe(200);
  await response.body?.cancel();
}

/** The project's rate-limiter Durable Object, as the worker addresses it. */
export function limiterOf(projectId: string) {
  return env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(projectId));
}

/** Takes every interactive token the project's pacer has now (at most 20 asks), as a burst of other traffic would. */
export async function drainTokens(projectId: string, settings: Record<string, number>): Promise<number> {
  const stub = limiterOf(projectId);
  let taken = 0;
  for (let ask = 0; ask < 20; ask++) {
    const permit: Permit = await stub.acquire("sandbox", "interactive", settings);
    if (!permit.granted) break;
    taken += 1;
  }
  return taken;
}

/** Every page of `GET /admin/merchants`, as the raw JSON texts and the merchants they list. */
export async function walkMerchants(): Promise<{ pages: string[]; merchants: { id: string }[]; lastCursor: string | null }> {
  const pages: string[] = [];
  const merchants: { id: string }[] = [];
  let cursor: string | null = null;
  // Ends on the last page (next_cursor null), or after 100 pages: the shared test database holds a few hundred merchants.
  for (let page = 0; page < 100; page++) {
    const response = await call(`/admin/merchants?limit=100${cursor === null ? "" : `&cursor=${cursor}`}`, { headers: ADMIN });
    const text = await response.text();
    expect(response.status, text).toBe(200);
    const body = JSON.parse(text) as { merchants: { id: string }[]; next_cursor: string | null };
    pages.push(text);
    merchants.push(...body.merchants);
    cursor = body.next_cursor;
    if (cursor === null) break;
  }
  return { pages, merchants, lastCursor: cursor };
}

/** Parses with the documented schema; zod drops unknown keys, so equality also proves nothing undocumented was sent. */
export function expectConforms<S extends z.ZodType>(schema: S, body: unknown, label = "") {
  const parsed = schema.safeParse(body);
  expect(parsed.success, parsed.success ? label : `${label} ${parsed.error.message}`).toBe(true);
  expect(parsed.data, label).toEqual(body);
}
