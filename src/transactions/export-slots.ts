import { and, eq, type SQL, sql } from "drizzle-orm";
import { runBatch } from "../db/bulk";
import type { Database } from "../db/client";
import { safeErrorMessage } from "../db/errors";
import { exportLeases } from "../db/schema";
import { ApiError } from "../errors";
import { log } from "../lib/log";

/** Exports one merchant may stream at once (contract.md, "cost"): each holds a D1 read of a page at a time for its whole range. */
export const MAX_CONCURRENT_EXPORTS = 2;
/**
 * How long a slot outlives its stream's last sign of life. A stream renews it at most every half lease as it reads pages,
 * so it lapses only when the client has read nothing for a whole minute; and the slot of a stream that crashed (isolate
 * evicted, CPU limit) is free again within a minute, where a longer lease would keep the merchant waiting for nothing.
 */
export const EXPORT_LEASE_SECONDS = 60;

/** One of the merchant's export slots, taken: renew it while streaming, release it when the stream ends however it ends. */
export interface ExportSlot {
  /** Keeps the slot alive (a D1 write at most every half lease); throws if it lapsed and the merchant's slots are all taken again. */
  renew(): Promise<void>;
  /** Frees the slot; never throws (a slot not released lapses by itself). */
  release(): Promise<void>;
}

/** Now and the end of a lease taken now, on D1's clock: every isolate compares against the same one. */
const now = sql`strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`;
const leaseEnd = sql`strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ${`+${EXPORT_LEASE_SECONDS} seconds`})`;

/**
 * One statement, so two isolates taking the merchant's last slot at once cannot both get it (D1 runs one write at a
 * time): the row is inserted only while fewer than MAX_CONCURRENT_EXPORTS unexpired ones exist.
 */
function takeStatement(id: string, merchantId: string): SQL {
  return sql`INSERT INTO ${exportLeases} (id, merchant_id, expires_at)
    SELECT ${id}, ${merchantId}, ${leaseEnd}
    WHERE (SELECT count(*) FROM ${exportLeases} WHERE merchant_id = ${merchantId} AND expires_at > ${now}) < ${MAX_CONCURRENT_EXPORTS}
    RETURNING id`;
}

/** Takes the lease `id` (again) if the merchant has a slot free; lapsed leases of the merchant are swept in the same D1 batch. */
async function take(db: Database, id: string, merchantId: string): Promise<boolean> {
  const sweep = db.delete(exportLeases).where(and(eq(exportLeases.merchantId, merchantId), sql`${exportLeases.expiresAt} <= ${now}`));
  const [, taken] = await runBatch(db.$client, [sweep, takeStatement(id, merchantId)]);
  return (taken?.results.length ?? 0) > 0;
}

/** A slot held in D1 (`export_leases`), so the bound holds across isolates. */
function heldSlot(db: Database, id: string, merchantId: string): ExportSlot {
  let renewedAt = Date.now();
  return {
    async renew() {
      if (Date.now() - renewedAt < (EXPORT_LEASE_SECONDS * 1000) / 2) return;
      const renewed = await db
        .update(exportLeases)
        .set({ expiresAt: leaseEnd })
        .where(eq(exportLeases.id, id))
        .returning({ id: exportLeases.id });
      // Lapsed and swept (the client stopped reading for a lease): carry on only if a slot is free again.
      if (renewed.length === 0 && !(await take(db, id, merchantId))) {
        throw new Error(`export slot ${id} lapsed while the client was not reading, and the merchant's slots are taken`);
      }
      renewedAt = Date.now();
    },
    async release() {
      try {
        await db.delete(exportLeases).where(eq(exportLeases.id, id));
      } catch (error) {
        log("warn", "export.slot_release_failed", { merchant_id: merchantId, error: safeErrorMessage(error) });
      }
    },
  };
}

/**
 * Takes one of the merchant's MAX_CONCURRENT_EXPORTS export slots; 429 `rate_limited` when all are held. Retry-After is
 * one lease: by then a crashed stream's slot has lapsed (a live stream may still be running; it ends when it ends).
 */
export async function takeExportSlot({ db, merchantId }: { db: Database; merchantId: string }): Promise<ExportSlot> {
  const id = `exp_${crypto.randomUUID().replaceAll("-", "")}`;
  if (!(await take(db, id, merchantId))) {
    throw new ApiError(
      "rate_limited",
      `at most ${MAX_CONCURRENT_EXPORTS} exports may stream at once for a merchant; retry after ${EXPORT_LEASE_SECONDS} seconds`,
      { "Retry-After": String(EXPORT_LEASE_SECONDS) },
    );
  }
  return heldSlot(db, id, merchantId);
}
