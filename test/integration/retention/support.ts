import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { type ArchiveStep, archiveMerchantHistory } from "../../../src/retention/archive";
import { type ArchiveBucket, type ArchiveRecord, decodeArchive } from "../../../src/retention/archive-format";
import { shardedDb } from "../../support/shards";
import { dbOfMerchant, getJson } from "../../support/status-api";

/** A cutoff after everything a test stored: every settled transaction of the merchant is old enough to archive. */
export const FUTURE_CUTOFF = "2999-01-01T00:00:00.000Z";

/** Steps a merchant's archive walk until it has nothing left (at most `maxSteps`), returning every step. */
export async function archiveAll(
  merchantId: string,
  { bucket = env.ARCHIVE, cutoff = FUTURE_CUTOFF, maxSteps = 50 }: { bucket?: ArchiveBucket; cutoff?: string; maxSteps?: number } = {},
): Promise<ArchiveStep[]> {
  const steps: ArchiveStep[] = [];
  // Ends at `idle` (or `busy`), or after maxSteps steps.
  for (let i = 0; i < maxSteps; i++) {
    const db = await dbOfMerchant(merchantId);
    const step = await archiveMerchantHistory({ db, bucket, merchantId, cutoff, now: Date.now() });
    steps.push(step);
    if (step.kind === "idle" || step.kind === "busy") return steps;
  }
  throw new Error(`archive of ${merchantId} did not finish in ${maxSteps} steps`);
}

/** What the status API answers about one transaction's history. */
export async function historyAnswers(apiKey: string, transactionId: string) {
  const [transaction, events, operations] = await Promise.all([
    getJson(`/v1/transactions/${transactionId}`, apiKey),
    getJson<{ events: { id: string }[] }>(`/v1/transactions/${transactionId}/events`, apiKey),
    getJson<{ operations: { id: string }[] }>(`/v1/transactions/${transactionId}/operations`, apiKey),
  ]);
  return { transaction, events, operations };
}

/** Every record of the merchant's archive objects in R2, object by object. */
export async function archivedRecords(merchantId: string): Promise<{ key: string; records: ArchiveRecord[] }[]> {
  const listed = await env.ARCHIVE.list({ prefix: `history/${merchantId}/` });
  expect(listed.truncated).toBe(false);
  return Promise.all(
    listed.objects.map(async ({ key }) => {
      const object = await env.ARCHIVE.get(key);
      if (!object) throw new Error(`${key} listed but not readable`);
      return { key, records: await decodeArchive(object.body) };
    }),
  );
}

/** The merchant's history rows still in D1 (operations: in records' histories and in the pre-0030 table). */
export async function rowsInD1(merchantId: string) {
  const count = async (table: string) =>
    (await shardedDb.prepare(`SELECT count(*) AS n FROM ${table} WHERE merchant_id = ?`).bind(merchantId).first<{ n: number }>())?.n ?? 0;
  const inHistories = await shardedDb
    .prepare("SELECT coalesce(sum(json_array_length(operation_history)), 0) AS n FROM transactions WHERE merchant_id = ?")
    .bind(merchantId)
    .first<{ n: number }>();
  return { events: await count("events"), operations: (inHistories?.n ?? 0) + (await count("operations")) };
}

/** The archive names a record lists (0034; null: none), as its column holds them. */
export async function namesOf(merchantId: string, transactionId: string): Promise<string[] | null> {
  const row = await shardedDb
    .prepare("SELECT archive_names FROM transactions WHERE merchant_id = ? AND id = ?")
    .bind(merchantId, transactionId)
    .first<{ archive_names: string | null }>();
  return row?.archive_names ? (JSON.parse(row.archive_names) as string[]) : null;
}

/** The merchant's archive objects as the ledger lists them. */
export async function ledger(merchantId: string) {
  const { results } = await shardedDb
    .prepare("SELECT key, status, manifest FROM archive_objects WHERE merchant_id = ? ORDER BY id")
    .bind(merchantId)
    .all<{ key: string; status: string; manifest: string | null }>();
  return results;
}

/** Ways a bucket fails: before writing, after writing (the run dies before its check), or on the read-back check. */
export type Failure = "put refused" | "dies after put" | "head fails";

/** The real bucket, failing as `failure` says while `failing()` is true. */
export function failingBucket(failure: Failure, failing: () => boolean = () => true): ArchiveBucket {
  const real = env.ARCHIVE;
  return {
    get: (key, options) => real.get(key, options),
    head: async (key) => {
      if (failure === "head fails" && failing()) throw new Error("R2 head: service unavailable (injected)");
      return real.head(key);
    },
    put: async (key, value, options) => {
      if (failure === "put refused" && failing()) throw new Error("R2 put: service unavailable (injected)");
      const written = await real.put(key, value, options);
      if (failure === "dies after put" && failing()) throw new Error("the run stopped after the put (injected)");
      return written;
    },
  };
}

/** No id appears twice in the list. */
export function expectUniqueIds(rows: readonly { id: string }[]) {
  const ids = rows.map((row) => row.id);
  expect(new Set(ids).size).toBe(ids.length);
}
