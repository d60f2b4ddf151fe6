import type { z } from "zod";
import { type Bucket, bucketFor, type Lane, type RateLimiter } from "../rate-limiter/limiter";
import { kindForStatus, SmartRouterError } from "./errors";
import {
  errorEnvelope,
  eventEnvelope,
  eventListEnvelope,
  type SmartRouterEvent,
  type TransactionSnapshot,
  transactionEnvelope,
  transactionListEnvelope,
} from "./schemas";

export const API_VERSION = "1.4.0.0";
const DEFAULT_TIMEOUT_MS = 10_000;

export interface SmartRouterCredentials {
  projectId: string;
  secretKey: string;
}

export interface SmartRouterClientOptions {
  baseUrl: string;
  credentials: SmartRouterCredentials;
  limiter: RateLimiter;
  lane: Lane;
  fetch?: typeof fetch;
  timeoutMs?: number;
  /** Called after every answered call, e.g. to count a batch's API calls. */
  onCall?: (call: { bucket: Bucket; status: number }) => void;
  /** Counts this client's calls and our pacer's waits for them (see `metered`). */
  meter?: PaceMeter;
}

/** The calls one client sent and how long our own pacer held them back: waited in place, or the wait it asked for when it refused. */
export interface PaceMeter {
  calls: number;
  waitedMs: number;
}

/** Cursor pagination of Smart Router lists (smart-router.md §5). */
export interface PageQuery {
  limit?: number;
  order?: "asc" | "desc";
  startAfter?: string;
  endBefore?: string;
}

function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function numberHeader(headers: Headers, name: string): number | undefined {
  const value = headers.get(name);
  if (value === null || value.trim() === "") return undefined;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : undefined;
}

/** Without a `Date` header, our own clock at the request, less this much for the skew between our clock and theirs. */
const CLOCK_SKEW_MARGIN_MS = 5_000;

/**
 * A lower bound, on Smart Router's clock, of when an API read saw the state it answers: the answer's `Date` header less
 * its one-second resolution. We trust Smart Router's clock over ours because events' `fired_at` (what reads are ordered
 * against) is on that clock; a lower bound because judging a read too new would let it hide a newer change, while
 * judging it too old only means the next read or event brings the change (and a read's state is never older than
 * `Date` − 1 s). Without a usable `Date`, our clock when the request left, less a skew margin.
 */
export function readTimeOf(headers: Headers, requestedAt: number): string {
  const date = Date.parse(headers.get("date") ?? "");
  const time = Number.isNaN(date) ? requestedAt - CLOCK_SKEW_MARGIN_MS : date - 1_000;
  return new Date(time).toISOString();
}

/** A transaction as an API read saw it, with the read's time (see `readTimeOf`). */
export interface TransactionRead {
  transaction: TransactionSnapshot;
  readAt: string;
}

/** A typed Smart Router API client: Basic auth, API-Version, timeout, envelope parsing, every call paced by the limiter. */
export class SmartRouterClient {
  readonly #options: SmartRouterClientOptions;
  readonly #authorization: string;

  constructor(options: SmartRouterClientOptions) {
    this.#options = options;
    this.#authorization = `Basic ${btoa(`${options.credentials.projectId}:${options.credentials.secretKey}`)}`;
  }

  /** The same client, also counting into `meter`: fetch-backs run side by side, and each records its own calls and waits. */
  metered(meter: PaceMeter): SmartRouterClient {
    return new SmartRouterClient({ ...this.#options, meter });
  }

  /** `GET /events/{id}`. */
  async fetchEvent(eventId: string): Promise<SmartRouterEvent> {
    const body = await this.#get(`/events/${encodeURIComponent(eventId)}`, new URLSearchParams(), eventEnvelope);
    return body.event;
  }

  /** `GET /events`, one page. */
  async listEvents(query: PageQuery = {}): Promise<{ events: SmartRouterEvent[]; hasMore: boolean }> {
    const body = await this.#get("/events", pageParams(query), eventListEnvelope);
    return { events: body.events, hasMore: body.has_more };
  }

  /** `GET /transactions/{id}` with its operations expanded, and when the read happened. */
  async fetchTransaction(transactionId: string): Promise<TransactionRead> {
    const params = new URLSearchParams([["expand[]", "operations"]]);
    const { body, readAt } = await this.#read(`/transactions/${encodeURIComponent(transactionId)}`, params, transactionEnvelope);
    return { transaction: body.transaction, readAt };
  }

  /** `GET /transactions`, one page, asking for operations to be expanded (a snapshot without them is refreshed on its own). */
  async listTransactions(query: PageQuery = {}): Promise<{ transactions: TransactionSnapshot[]; hasMore: boolean; readAt: string }> {
    const params = pageParams(query);
    params.append("expand[]", "operations");
    const { body, readAt } = await this.#read("/transactions", params, transactionListEnvelope);
    return { transactions: body.transactions, hasMore: body.has_more, readAt };
  }

  async #get<S extends z.ZodType>(path: string, params: URLSearchParams, schema: S): Promise<z.infer<S>> {
    return (await this.#read(path, params, schema)).body;
  }

  /** One GET: our pacer's permit, the request, what the answer says of the budget, then its body in `schema`'s shape. */
  async #read<S extends z.ZodType>(path: string, params: URLSearchParams, schema: S): Promise<{ body: z.infer<S>; readAt: string }> {
    const bucket = bucketFor(this.#options.credentials.projectId, path);
    await this.#acquire(bucket);
    const url = new URL(`${this.#options.baseUrl.replace(/\/+$/, "")}${path}`);
    url.search = params.toString();
    const requestedAt = Date.now();
    const response = await this.#send(bucket, path, url);
    const retryAfterMs = await this.#observe(bucket, response);
    const body = await readAnswer(path, response, schema, retryAfterMs);
    return { body, readAt: readTimeOf(response.headers, requestedAt) };
  }

  /** Waits for our pacer's permit, counted into the meter; a refusal is a local `rate_limited` (status null). */
  async #acquire(bucket: Bucket): Promise<void> {
    const { limiter, lane, meter } = this.#options;
    const permit = await limiter.acquire(bucket, lane);
    if (meter) {
      meter.waitedMs += permit.granted ? (permit.waitedMs ?? 0) : permit.retryAfterMs;
      if (permit.granted) meter.calls += 1;
    }
    if (!permit.granted) {
      throw new SmartRouterError("rate_limited", `local ${bucket} budget exhausted`, { retryAfterMs: permit.retryAfterMs });
    }
  }

  /** Sends the request; no answer (network error or timeout) is told to the limiter and thrown as `network`. */
  async #send(bucket: Bucket, path: string, url: URL): Promise<Response> {
    try {
      return await (this.#options.fetch ?? fetch)(url, {
        headers: { authorization: this.#authorization, "api-version": API_VERSION, accept: "application/json" },
        signal: AbortSignal.timeout(this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      });
    } catch (error) {
      // No answer is a failure for the project's circuit breaker, like a 5xx (status 0: network error or timeout).
      await this.#options.limiter.observe({ bucket, status: 0 });
      const reason = error instanceof Error ? error.name : "error";
      throw new SmartRouterError("network", `GET ${path}: ${reason === "TimeoutError" ? "timed out" : "network error"}`);
    }
  }

  /** Tells the limiter (and `onCall`) what the answer says of the budget; returns its Retry-After in ms, if any. */
  async #observe(bucket: Bucket, response: Response): Promise<number | undefined> {
    const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"));
    await this.#options.limiter.observe({
      bucket,
      status: response.status,
      limitPerMinute: numberHeader(response.headers, "x-ratelimit"),
      remaining: numberHeader(response.headers, "x-ratelimit-remaining"),
      retryAfterMs,
    });
    this.#options.onCall?.({ bucket, status: response.status });
    return retryAfterMs;
  }
}

/** The answer's body in `schema`'s shape; an error status or another shape is a typed SmartRouterError. */
async function readAnswer<S extends z.ZodType>(
  path: string,
  response: Response,
  schema: S,
  retryAfterMs: number | undefined,
): Promise<z.infer<S>> {
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const envelope = errorEnvelope.safeParse(json);
    const errorType = envelope.success ? envelope.data.error_type : undefined;
    throw new SmartRouterError(kindForStatus(response.status), `GET ${path}: ${response.status} ${errorType ?? "error"}`, {
      status: response.status,
      errorType,
      retryAfterMs,
    });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new SmartRouterError("invalid_response", `GET ${path}: unexpected response shape`, { status: response.status });
  }
  return parsed.data;
}

function pageParams(query: PageQuery): URLSearchParams {
  const params = new URLSearchParams();
  if (query.limit !== undefined) params.set("limit", String(query.limit));
  if (query.order) params.set("order", query.order);
  if (query.startAfter) params.set("start_after", query.startAfter);
  if (query.endBefore) params.set("end_before", query.endBefore);
  return params;
}
