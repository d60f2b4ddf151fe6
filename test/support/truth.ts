import { expect } from "vitest";
import type { Shop } from "./sandbox";
import type { shardedDb } from "./shards";

type Truth = Awaited<ReturnType<Shop["truth"]>>;

/**
 * One transaction as the service stored it on `db` equals Smart Router's truth, each thing once: the record's status,
 * amounts and metadata, its operations (by id, below), one fulfilment iff an event captured it, and every event applied.
 */
export async function expectStoredAsTruth({
  db,
  merchantId,
  transactionId,
  truth,
}: {
  db: D1Database | typeof shardedDb;
  merchantId: string;
  transactionId: string;
  truth: Truth;
}) {
  const final = truth.transactions.find((t) => t.id === transactionId);
  const events = truth.events.filter((e) => e.transaction_id === transactionId);
  const one = <T>(query: string) => db.prepare(query).bind(merchantId, transactionId).first<T>();
  const row = await one(
    "SELECT status, amount, authorized_amount, captured_amount, refunded_amount, available_amount, metadata FROM transactions WHERE merchant_id = ? AND id = ?",
  );
  expect(row).toEqual({
    status: final?.status,
    amount: final?.amount,
    authorized_amount: final?.authorized_amount,
    captured_amount: final?.captured_amount,
    refunded_amount: final?.refunded_amount,
    available_amount: final?.available_amount,
    metadata: JSON.stringify(final?.metadata ?? {}),
  });
  const operations = await db
    .prepare(
      "SELECT j.value ->> '$.id' AS id FROM transactions AS t, json_each(t.operation_history) AS j WHERE t.merchant_id = ? AND t.id = ? ORDER BY 1",
    )
    .bind(merchantId, transactionId)
    .all<{ id: string }>();
  // Every operation an event could carry is stored, and nothing Smart Router does not hold: an operation after the
  // transaction's last event (a declined refund fires none) is known only to a read, or to a live snapshot's reading.
  const truthOperations = (final?.operations as { id: string; created_at: string }[] | null) ?? [];
  const lastEvent = events.reduce((last, e) => (e.fired_at > last ? e.fired_at : last), "");
  const stored = operations.results.map((o) => o.id);
  expect(new Set(stored).size).toBe(stored.length);
  expect(stored).toEqual(expect.arrayContaining(truthOperations.filter((o) => o.created_at <= lastEvent).map((o) => o.id)));
  expect(truthOperations.map((o) => o.id)).toEqual(expect.arrayContaining(stored));
  const fulfilments = await one<{ n: number }>("SELECT count(*) AS n FROM fulfillments WHERE merchant_id = ? AND transaction_id = ?");
  expect(fulfilments?.n).toBe(events.some((e) => e.name === "transaction.captured") ? 1 : 0);
  const applied = await one<{ n: number }>(
    "SELECT count(*) AS n FROM events WHERE merchant_id = ? AND transaction_id = ? AND outcome IN ('applied', 'stale')",
  );
  expect(applied?.n).toBe(events.length);
}
