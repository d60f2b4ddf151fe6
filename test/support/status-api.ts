import { env } from "cloudflare:workers";
import { createApp } from "../../src/app";
import { openDatabase } from "../../src/db/client";
import { historyOperations } from "../../src/db/operation-history";
import { events, fulfillments, operations, transactions } from "../../src/db/schema";
import type { StatusLimiter } from "../../src/http/status-rate-limit";
import { queueFromBinding } from "../../src/ingest/delivery-queue";
import { ADMIN, type CreatedMerchant, call, createMerchant } from "./fixtures";
import { dbFor } from "./shards";

export const db = openDatabase(env.DB);

/** The drizzle handle of a merchant's shard, where seeds go. */
export const dbOfMerchant = async (merchantId: string) => openDatabase(await dbFor(merchantId));

let counter = 0;
/** A Smart Router-shaped id unique within the run. */
export function uniqueTransactionId(prefix = "tr"): string {
  counter += 1;
  return `${prefix}_${Date.now().toString(36)}${counter.toString(36).padStart(4, "0")}`;
}

type TransactionRow = typeof transactions.$inferInsert;

/** A stored transaction row with plausible defaults; override any column. */
export function transactionRow(merchantId: string, overrides: Partial<TransactionRow> = {}): TransactionRow {
  const now = new Date().toISOString();
  return {
    merchantId,
    id: uniqueTransactionId(),
    projectId: "test-proj_seed",
    invoiceId: "iv_seed",
    customerId: null,
    name: "Order #1",
    paymentType: "card",
    gatewayName: "sandbox",
    status: "authorized",
    currency: "EUR",
    amount: "10.50",
    authorizedAmount: "10.50",
    capturedAmount: "0",
    refundedAmount: "0",
    availableAmount: "10.50",
    voidedAmount: "0",
    metadata: { order: "1" },
    sandbox: true,
    createdAt: "2026-01-01T10:00:00.000Z",
    snapshotVersion: "0001",
    lastEventId: "ev_seed",
    lastEventName: "transaction.authorized",
    lastEventFiredAt: "2026-01-01T10:00:01.000Z",
    updatedAt: now,
    ...overrides,
  };
}

/** Inserts transactions, one D1 batch per merchant on its shard (a row has 28 columns, so one statement per row keeps under 100 parameters). */
export async function seedTransactions(rows: TransactionRow[]): Promise<TransactionRow[]> {
  // One D1 batch per merchant, on its shard.
  for (const [merchantId, ofMerchant] of Map.groupBy(rows, (row) => row.merchantId)) {
    const shard = await dbOfMerchant(merchantId);
    const [first, ...rest] = ofMerchant.map((row) => shard.insert(transactions).values(row));
    if (first) await shard.batch([first, ...rest]);
  }
  return rows;
}

export async function seedTransaction(merchantId: string, overrides: Partial<TransactionRow> = {}): Promise<TransactionRow> {
  const row = transactionRow(merchantId, overrides);
  await seedTransactions([row]);
  return row;
}

type OperationSeed = { merchantId: string; transactionId: string } & Partial<typeof operations.$inferInsert>;

/** An operation with plausible defaults, as the table stored it and as the status API shows it. */
function operationValues(row: OperationSeed): typeof operations.$inferInsert {
  return {
    id: uniqueTransactionId("op"),
    type: "authorization",
    amount: "10.50",
    currency: "EUR",
    isAttempt: false,
    hasFailed: false,
    isAccountable: true,
    gatewayOperationId: null,
    errorCode: null,
    errorMessage: null,
    paymentType: "card",
    metadata: null,
    createdAt: "2026-01-01T10:00:00.000Z",
    ...row,
  };
}

/**
 * Adds an operation to a seeded record's history as the apply stores it (the record must exist; an id it already holds
 * is left as stored, as the apply leaves it).
 */
export async function seedOperation(row: OperationSeed) {
  const values = operationValues(row);
  const [stored] = historyOperations([
    {
      id: values.id ?? "",
      type: values.type,
      amount: values.amount,
      currency: values.currency,
      is_attempt: values.isAttempt,
      has_failed: values.hasFailed,
      is_accountable: values.isAccountable,
      gateway_operation_id: values.gatewayOperationId,
      error_code: values.errorCode,
      error_message: values.errorMessage,
      payment_type: values.paymentType,
      metadata: values.metadata,
      created_at: values.createdAt,
    },
  ]);
  const result = await (await dbFor(values.merchantId))
    .prepare(
      `UPDATE transactions SET operation_history = CASE
         WHEN EXISTS (SELECT 1 FROM json_each(operation_history) AS j WHERE j.value ->> '$.id' = ?1) THEN operation_history
         ELSE json_insert(coalesce(operation_history, '[]'), '$[#]', json(?2)) END
       WHERE merchant_id = ?3 AND id = ?4`,
    )
    .bind(values.id, JSON.stringify(stored), values.merchantId, values.transactionId)
    .run();
  if (result.meta.changes !== 1) throw new Error(`seedOperation: no record ${values.transactionId} to hold ${values.id}`);
  return values;
}

/** An operation as code before 0030 stored it: a row of the `operations` table (no longer read: 0035 merges such rows). */
export async function seedTableOperation(row: OperationSeed) {
  const values = operationValues(row);
  await (await dbOfMerchant(values.merchantId)).insert(operations).values(values);
  return values;
}

export async function seedEvent(row: { merchantId: string; transactionId: string } & Partial<typeof events.$inferInsert>) {
  const values: typeof events.$inferInsert = {
    id: uniqueTransactionId("ev"),
    name: "transaction.authorized",
    firedAt: "2026-01-01T10:00:00.000Z",
    outcome: "applied",
    deliveries: 1,
    firstReceivedAt: "2026-01-01T10:00:02.000Z",
    processedAt: "2026-01-01T10:00:03.000Z",
    detail: null,
    ...row,
  };
  await (await dbOfMerchant(values.merchantId)).insert(events).values(values);
  return values;
}

export async function seedFulfillment(row: { merchantId: string; transactionId: string } & Partial<typeof fulfillments.$inferInsert>) {
  const values: typeof fulfillments.$inferInsert = {
    messageId: `msg_${crypto.randomUUID().replaceAll("-", "")}`,
    status: "pending",
    requestedAt: "2026-01-01T10:05:00.000Z",
    ...row,
  };
  await (await dbOfMerchant(values.merchantId)).insert(fulfillments).values(values);
  return values;
}

/** A GET on the status API with a merchant's API key. */
export function getWithKey(path: string, apiKey: string, headers: Record<string, string> = {}): Promise<Response> {
  return call(path, { headers: { authorization: `Bearer ${apiKey}`, ...headers } });
}

/** GETs and parses JSON, failing loudly on an unexpected status. */
export async function getJson<T>(path: string, apiKey: string, status = 200): Promise<T> {
  const response = await getWithKey(path, apiKey);
  if (response.status !== status) throw new Error(`GET ${path}: expected ${status}, got ${response.status} ${await response.text()}`);
  return response.json() as Promise<T>;
}

/** Issues another API key for the merchant through the admin API. */
export async function issueKey(merchant: CreatedMerchant): Promise<{ id: string; key: string }> {
  const response = await call(`/admin/merchants/${merchant.merchant.id}/api-keys`, { method: "POST", headers: ADMIN });
  const body = (await response.json()) as { api_key: { id: string; key: string } };
  return body.api_key;
}

/** Revokes an API key through the admin API. */
export async function revokeKey(merchant: CreatedMerchant, keyId: string): Promise<void> {
  const response = await call(`/admin/merchants/${merchant.merchant.id}/api-keys/${keyId}`, { method: "DELETE", headers: ADMIN });
  if (response.status !== 200) throw new Error(`revokeKey: ${response.status} ${await response.text()}`);
}

/** A merchant with one transaction carrying an operation, an applied event and a fulfilment row. */
export async function merchantWithTransaction(overrides: Record<string, unknown> = {}) {
  const merchant = await createMerchant(overrides);
  const transaction = await seedTransaction(merchant.merchant.id);
  const ids = { merchantId: merchant.merchant.id, transactionId: transaction.id };
  await seedOperation(ids);
  await seedEvent(ids);
  return { merchant, transaction };
}

/** The app with a status API limiter of the test's choosing (and the real delivery queue). */
export function appWithStatusLimiter(limiter: StatusLimiter) {
  const app = createApp({ deliveryQueue: (bindings) => queueFromBinding(bindings.WEBHOOKS), statusLimiter: () => limiter });
  return (path: string, init: RequestInit = {}) => app.fetch(new Request(`https://edge.test${path}`, init), env);
}

/** A limiter allowing `limit` requests per key, recording the keys it was asked about. */
export function countingLimiter(limit: number) {
  const counts = new Map<string, number>();
  const keys: string[] = [];
  const limiter: StatusLimiter = {
    async limit({ key }) {
      keys.push(key);
      const count = (counts.get(key) ?? 0) + 1;
      counts.set(key, count);
      return { success: count <= limit };
    },
  };
  return { limiter, keys };
}
