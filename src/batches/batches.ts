import { and, asc, desc, eq, inArray, sql } from "drizzle-orm";
import { z } from "zod";
import { insertJsonRows, type JsonRow } from "../db/bulk";
import type { Database } from "../db/client";
import { afterRow } from "../db/keyset";
import type { BatchRow } from "../db/rows";
import { batches, isOpenBatch } from "../db/schema";
import { ApiError } from "../errors";
import { decodePageCursor, keysetPage } from "../lib/cursor";
import { type BatchMessage, chunk } from "../queue/messages";
import { sendAll } from "../queue/send";

/** What a merchant asks for (the route validates it: src/routes/batches.ts). */
export type CreateBatchInput =
  | { kind: "sync"; created_after: string; created_before: string }
  | { kind: "refresh"; transaction_ids: string[] };

/** The batch as merchants see it. */
export function presentBatch(row: BatchRow) {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    total: row.total,
    done: row.done,
    failed: row.failed,
    api_calls: row.apiCalls,
    created_at: row.createdAt,
    started_at: row.startedAt,
    finished_at: row.finishedAt,
    ...(row.error ? { error: row.error } : {}),
  };
}

/** Batches one merchant may have open (queued or running) at once (contract.md, "cost"): a 409 past it, naming them. */
export const MAX_OPEN_BATCHES = 5;
/**
 * The widest `sync` range: a calendar month, the unit merchants reconcile by (and export by: MAX_EXPORT_RANGE_DAYS), so one
 * batch imports at most a month of the merchant's transactions and a wider need is a few batches, within MAX_OPEN_BATCHES.
 */
export const MAX_SYNC_RANGE_DAYS = 31;

/** The queue messages of a new batch: its first sync page, or its refresh ids in chunks. */
function firstUnits(id: string, merchantId: string, input: CreateBatchInput, ids: string[]): BatchMessage[] {
  if (input.kind === "sync") {
    return [{ v: 1, kind: "sync_page", unit_id: `${id}/0`, batch_id: id, merchant_id: merchantId, start_after: null }];
  }
  return chunk(ids).map((transactionIds, index) => ({
    v: 1,
    kind: "refresh",
    unit_id: `${id}/${index}`,
    batch_id: id,
    run_id: null,
    merchant_id: merchantId,
    transaction_ids: transactionIds,
  }));
}

/**
 * Inserts the batch only while the merchant has fewer than MAX_OPEN_BATCHES open ones, in one statement: D1 runs one
 * write at a time, so two concurrent POSTs at 4 open cannot both pass. Returns whether the row went in.
 */
async function insertIfPlace(db: Database, row: JsonRow): Promise<boolean> {
  const openCount = sql`(SELECT count(*) FROM ${batches} WHERE ${batches.merchantId} = ${row.merchant_id} AND ${isOpenBatch(batches.status)})`;
  // insertJsonRows ends its SELECT with `WHERE true`: the condition joins it with AND, before RETURNING.
  const [statement] = insertJsonRows(batches, [row], sql`AND ${openCount} < ${MAX_OPEN_BATCHES} RETURNING id`);
  if (!statement) throw new Error("insertJsonRows made no statement for one row");
  return (await db.all(statement)).length > 0;
}

/** The 409 of a merchant with MAX_OPEN_BATCHES open batches: the error envelope has no other field, so the message names them. */
async function tooManyOpen(db: Database, merchantId: string): Promise<ApiError> {
  const open = await db
    .select({ id: batches.id })
    .from(batches)
    .where(and(eq(batches.merchantId, merchantId), isOpenBatch(batches.status)))
    .orderBy(asc(batches.createdAt), asc(batches.id));
  return new ApiError(
    "conflict",
    `at most ${MAX_OPEN_BATCHES} batches may be open (queued or running) at once; open: ${open.map((batch) => batch.id).join(", ")}. ` +
      "Wait for one to finish or cancel one (DELETE /v1/batches/{id}).",
  );
}

/** Creates a batch (409 past MAX_OPEN_BATCHES open ones) and queues its first units of work in the batch lane. */
export async function createBatch({
  db,
  queue,
  merchantId,
  input,
}: {
  db: Database;
  queue: Queue;
  merchantId: string;
  input: CreateBatchInput;
}) {
  const id = `bat_${crypto.randomUUID().replaceAll("-", "")}`;
  const ids = input.kind === "refresh" ? [...new Set(input.transaction_ids)] : [];
  const messages = firstUnits(id, merchantId, input, ids);
  const params =
    input.kind === "sync" ? { created_after: input.created_after, created_before: input.created_before } : { transaction_ids: ids };
  const row = {
    id,
    merchant_id: merchantId,
    kind: input.kind,
    status: "queued",
    params: JSON.stringify(params),
    total: ids.length,
    outstanding: messages.length,
  };
  if (!(await insertIfPlace(db, row))) throw await tooManyOpen(db, merchantId);
  try {
    await sendAll(queue, messages);
  } catch {
    await db
      .update(batches)
      .set({ status: "failed", error: "could not queue the work", finishedAt: new Date().toISOString() })
      .where(eq(batches.id, id));
    throw new ApiError("service_unavailable", "the batch could not be queued; retry later", { "Retry-After": "30" });
  }
  return findBatch({ db, merchantId, batchId: id });
}

/** One of the merchant's batches; another merchant's is a 404. */
export async function findBatch({ db, merchantId, batchId }: { db: Database; merchantId: string; batchId: string }) {
  const row = await db
    .select()
    .from(batches)
    .where(and(eq(batches.id, batchId), eq(batches.merchantId, merchantId)))
    .get();
  if (!row) throw new ApiError("not_found", `batch ${batchId} not found`);
  return presentBatch(row);
}

const batchCursor = z.strictObject({ c: z.string().min(1).max(64), i: z.string().min(1).max(64) });

/** The merchant's batches, newest first (`created_at`, then id, descending), in keyset pages of `limit`. */
export async function listBatches({ db, merchantId, cursor, limit }: { db: Database; merchantId: string; cursor?: string; limit: number }) {
  const after = cursor === undefined ? undefined : decodePageCursor(cursor, batchCursor);
  const rows = await db
    .select()
    .from(batches)
    .where(and(eq(batches.merchantId, merchantId), afterRow("desc", [batches.createdAt, batches.id], after && [after.c, after.i])))
    .orderBy(desc(batches.createdAt), desc(batches.id))
    .limit(limit + 1);
  const { page, nextCursor } = keysetPage(rows, limit, (row) => ({ c: row.createdAt, i: row.id }));
  return { batches: page.map(presentBatch), next_cursor: nextCursor };
}

/** Cancels a batch that has not finished; queued work for it is dropped as it comes up. */
export async function cancelBatch({ db, merchantId, batchId }: { db: Database; merchantId: string; batchId: string }) {
  const row = await db
    .update(batches)
    .set({ status: "cancelled", finishedAt: new Date().toISOString() })
    .where(and(eq(batches.id, batchId), eq(batches.merchantId, merchantId), inArray(batches.status, ["queued", "running"])))
    .returning()
    .get();
  if (row) return presentBatch(row);
  const existing = await findBatch({ db, merchantId, batchId });
  throw new ApiError("conflict", `batch ${batchId} is already ${existing.status}`);
}

/** Fails a batch that is still queued or running, with the reason merchants see in `error`. */
export function failBatch({ db, batchId, reason }: { db: Database; batchId: string; reason: string }) {
  return db
    .update(batches)
    .set({ status: "failed", error: reason, finishedAt: new Date().toISOString() })
    .where(and(eq(batches.id, batchId), inArray(batches.status, ["queued", "running"])));
}

/** Fails every open batch of a merchant (its Smart Router key was refused): batch work stops until the key changes. */
export function failMerchantBatches({ db, merchantId, reason }: { db: Database; merchantId: string; reason: string }) {
  return db
    .update(batches)
    .set({ status: "failed", error: reason, finishedAt: new Date().toISOString() })
    .where(and(eq(batches.merchantId, merchantId), inArray(batches.status, ["queued", "running"])));
}
