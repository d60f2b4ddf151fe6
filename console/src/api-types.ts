// The shapes the console reads, as the status API documents them (/v1/openapi.json); nothing here is computed locally.

/** The error envelope of every non-2xx answer. */
export interface ErrorEnvelope {
  error: { code: string; message: string; request_id: string };
}

export interface Merchant {
  id: string;
  name: string;
  smart_router?: { project_id: string };
}

export interface MerchantPage {
  merchants: Merchant[];
  next_cursor: string | null;
}

export interface Transaction {
  id: string;
  status: string;
  amount: string;
  currency: string;
  authorized_amount: string;
  captured_amount: string;
  refunded_amount: string;
  available_amount: string;
  payment_type: string | null;
  gateway_name: string | null;
  name: string | null;
  sandbox: boolean;
  created_at: string;
  updated_at: string;
  last_event: { id: string; name: string | null; fired_at: string | null } | null;
  fulfillment: { status: string; requested_at: string | null; delivered_at: string | null };
}

export interface TransactionPage {
  transactions: Transaction[];
  next_cursor: string | null;
}

export type TimelineKind = "delivery" | "fetch_back" | "state_change" | "fulfillment_attempt";

export interface TimelineEntry {
  at: string;
  kind: TimelineKind;
  summary: string;
  detail: Record<string, unknown>;
}

export interface Timeline {
  timeline: TimelineEntry[];
}

export const BATCH_ACTIVE_STATUSES: readonly string[] = ["queued", "running"];

export interface Batch {
  id: string;
  kind: string;
  status: "queued" | "running" | "completed" | "failed" | "cancelled";
  total: number;
  done: number;
  failed: number;
  api_calls: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  error?: string;
}

export interface BatchPage {
  batches: Batch[];
  next_cursor: string | null;
}

export interface Alert {
  id: string;
  kind: string;
  state: "open" | "resolved";
  transaction_id: string | null;
  opened_at: string;
  resolved_at: string | null;
  detail: string;
}

export interface AlertPage {
  alerts: Alert[];
  next_cursor: string | null;
}

export interface Pipeline {
  from: string;
  to: string;
  deliveries_per_minute: { minute: string; count: number }[];
  outcomes: { applied: number; stale: number; duplicate: number; rejected: number; pending: number; ignored: number };
  lag_ms: { p50: number | null; p99: number | null };
  waiting: { pending_events: number; retries_scheduled: number };
  dead_letters: number;
  backstop: { watermark: string | null; lag_seconds: number | null; last_run_at: string | null };
  reconciliation: { last_run_at: string | null; runs: number };
}

export interface BudgetBucket {
  bucket: string;
  rate_per_minute: number;
  tokens_left: number;
  batch_rate_per_minute: number;
  batch_share: number;
  recent_429s: string[];
}

export interface Budget {
  project_id: string;
  buckets: BudgetBucket[];
  breaker: { state: "closed" | "open" | "half_open"; since: string | null };
}

/** The part of the OpenAPI document the console reads: which statuses the list filter takes. */
export interface OpenApiDocument {
  paths?: Record<string, Record<string, { parameters?: { name: string; in: string; schema?: { enum?: string[] } }[] }>>;
}
