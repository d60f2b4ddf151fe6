import type { z } from "@hono/zod-openapi";
import { describe, expect, it } from "vitest";
import type {
  eventsResponse,
  operationsResponse,
  transactionPageResponse,
  transactionResponse,
} from "../../../src/transactions/api-schemas";
import { createMerchant } from "../../support/fixtures";
import {
  getJson,
  getWithKey,
  issueKey,
  merchantWithTransaction,
  seedEvent,
  seedFulfillment,
  seedOperation,
  seedTransaction,
  seedTransactions,
  transactionRow,
} from "../../support/status-api";

type TransactionBody = z.infer<typeof transactionResponse>;
type PageBody = z.infer<typeof transactionPageResponse>;
type OperationsBody = z.infer<typeof operationsResponse>;
type EventsBody = z.infer<typeof eventsResponse>;

/** Follows next_cursor (alone: it carries the filters) from `firstPath` to the end; `between` runs before each follow-up page. */
async function walk(firstPath: string, apiKey: string, between: () => Promise<void> = async () => {}) {
  const limit = new URL(firstPath, "https://edge.test").searchParams.get("limit") ?? "50";
  const pages: PageBody[] = [await getJson<PageBody>(firstPath, apiKey)];
  for (let cursor = pages[0]?.next_cursor; cursor; cursor = pages.at(-1)?.next_cursor) {
    await between();
    pages.push(await getJson<PageBody>(`/v1/transactions?limit=${limit}&cursor=${cursor}`, apiKey));
  }
  return { pages, ids: pages.flatMap((page) => page.transactions.map((t) => t.id)) };
}

const ms = (base: string, offset: number) => new Date(Date.parse(base) + offset).toISOString();

describe("status API: one transaction", () => {
  it("returns the contract's shape, amounts as Smart Router's decimal strings", async () => {
    const merchant = await createMerchant({ fulfillment_url: "https://shop.example/fulfil" });
    const row = await seedTransaction(merchant.merchant.id, {
      status: "completed",
      amount: "1234.5000",
      authorizedAmount: "1234.5000",
      capturedAmount: "1234.5000",
      refundedAmount: "0.00",
      availableAmount: "1234.5000",
      metadata: { order: "A-1", channel: "web" },
    });
    await seedFulfillment({
      merchantId: merchant.merchant.id,
      transactionId: row.id,
      status: "delivered",
      requestedAt: "2026-01-01T10:05:00.000Z",
      deliveredAt: "2026-01-01T10:05:02.000Z",
    });

    const body = await getJson<TransactionBody>(`/v1/transactions/${row.id}`, merchant.api_key);
    expect(body).toEqual({
      transaction: {
        id: row.id,
        status: "completed",
        amount: "1234.5000",
        currency: "EUR",
        authorized_amount: "1234.5000",
        captured_amount: "1234.5000",
        refunded_amount: "0.00",
        available_amount: "1234.5000",
        payment_type: "card",
        gateway_name: "sandbox",
        invoice_id: "iv_seed",
        name: "Order #1",
        metadata: { order: "A-1", channel: "web" },
        sandbox: true,
        created_at: "2026-01-01T10:00:00.000Z",
        updated_at: row.updatedAt,
        last_event: { id: "ev_seed", name: "transaction.authorized", fired_at: "2026-01-01T10:00:01.000Z" },
        fulfillment: { status: "delivered", requested_at: "2026-01-01T10:05:00.000Z", delivered_at: "2026-01-01T10:05:02.000Z" },
      },
    });
  });

  it("shows the fulfilment as awaiting capture or not configured when there is no outbox row", async () => {
    const withUrl = await createMerchant({ fulfillment_url: "https://shop.example/fulfil" });
    const without = await createMerchant();
    const a = await seedTransaction(withUrl.merchant.id, { lastEventId: null, lastEventName: null, lastEventFiredAt: null });
    const b = await seedTransaction(without.merchant.id);
    const first = await getJson<TransactionBody>(`/v1/transactions/${a.id}`, withUrl.api_key);
    expect(first.transaction.fulfillment).toEqual({ status: "awaiting_capture", requested_at: null, delivered_at: null });
    expect(first.transaction.last_event).toBeNull();
    const second = await getJson<TransactionBody>(`/v1/transactions/${b.id}`, without.api_key);
    expect(second.transaction.fulfillment).toEqual({ status: "not_configured", requested_at: null, delivered_at: null });
  });

  it("answers 304 to a matching If-None-Match, and a new ETag once the transaction or its fulfilment changes", async () => {
    const merchant = await createMerchant({ fulfillment_url: "https://shop.example/fulfil" });
    const row = await seedTransaction(merchant.merchant.id, { status: "completed" });
    const path = `/v1/transactions/${row.id}`;

    const first = await getWithKey(path, merchant.api_key);
    expect(first.status).toBe(200);
    // A record carries the customer's data: no cache stores it, yet a client that kept the ETag gets its 304.
    expect(first.headers.get("cache-control")).toBe("private, no-store");
    const tag = first.headers.get("etag");
    expect(tag).toMatch(/^"[^"]+"$/);
    if (!tag) throw new Error("no ETag");

    for (const ifNoneMatch of [tag, `W/${tag}`, `"other", ${tag}`, "*"]) {
      const again = await getWithKey(path, merchant.api_key, { "if-none-match": ifNoneMatch });
      expect(again.status, ifNoneMatch).toBe(304);
      expect(again.headers.get("etag")).toBe(tag);
      expect(await again.text()).toBe("");
    }
    expect((await getWithKey(path, merchant.api_key, { "if-none-match": '"stale"' })).status).toBe(200);

    // The fulfilment is part of the representation though it lives in another table.
    await seedFulfillment({ merchantId: merchant.merchant.id, transactionId: row.id, status: "pending" });
    const changed = await getWithKey(path, merchant.api_key, { "if-none-match": tag });
    expect(changed.status).toBe(200);
    expect(changed.headers.get("etag")).not.toBe(tag);
  });

  it("works with a second API key of the merchant", async () => {
    const { merchant, transaction } = await merchantWithTransaction();
    const second = await issueKey(merchant);
    const body = await getJson<TransactionBody>(`/v1/transactions/${transaction.id}`, second.key);
    expect(body.transaction.id).toBe(transaction.id);
    // The first key still works until revoked.
    expect((await getWithKey(`/v1/transactions/${transaction.id}`, merchant.api_key)).status).toBe(200);
  });
});

describe("status API: transaction list", () => {
  it("lists newest first with ties broken by id, and ends with next_cursor null", async () => {
    const merchant = await createMerchant();
    const base = "2026-02-01T00:00:00.000Z";
    const rows = await seedTransactions([
      transactionRow(merchant.merchant.id, { id: "tr_b", updatedAt: ms(base, 1) }),
      transactionRow(merchant.merchant.id, { id: "tr_a", updatedAt: ms(base, 1) }),
      transactionRow(merchant.merchant.id, { id: "tr_c", updatedAt: ms(base, 0) }),
      transactionRow(merchant.merchant.id, { id: "tr_d", updatedAt: ms(base, 2) }),
    ]);
    const body = await getJson<PageBody>("/v1/transactions", merchant.api_key);
    expect(body.transactions.map((t) => t.id)).toEqual(["tr_d", "tr_b", "tr_a", "tr_c"]);
    expect(body.next_cursor).toBeNull();
    expect(body.transactions[0]).toMatchObject({ id: "tr_d", updated_at: rows[3]?.updatedAt, amount: "10.50" });
  });

  it("returns each of 250 transactions exactly once while new ones arrive between pages", async () => {
    const merchant = await createMerchant();
    const base = "2026-03-01T00:00:00.000Z";
    // Groups of 7 share an updated_at, so pages must break ties on id to stay exact.
    const seeded = await seedTransactions(
      Array.from({ length: 250 }, (_, i) => transactionRow(merchant.merchant.id, { updatedAt: ms(base, Math.floor(i / 7)) })),
    );
    const arrivals: string[] = [];
    const { pages, ids } = await walk("/v1/transactions?limit=17", merchant.api_key, async () => {
      const fresh = await seedTransaction(merchant.merchant.id);
      arrivals.push(fresh.id);
    });

    expect(pages).toHaveLength(Math.ceil(250 / 17));
    expect(pages.slice(0, -1).every((page) => page.transactions.length === 17)).toBe(true);
    expect(ids).toHaveLength(250);
    expect(new Set(ids).size).toBe(250);
    expect(new Set(ids)).toEqual(new Set(seeded.map((row) => row.id)));
    // Arrivals sort before the cursor: the walk in progress does not see them; a new walk does, first.
    expect(ids.some((id) => arrivals.includes(id))).toBe(false);
    const fresh = await getJson<PageBody>("/v1/transactions?limit=100", merchant.api_key);
    expect(fresh.transactions.slice(0, arrivals.length).map((t) => t.id)).toEqual([...arrivals].reverse());

    const keys = pages.flatMap((page) => page.transactions.map((t) => `${t.updated_at}|${t.id}`));
    expect(keys).toEqual([...keys].sort().reverse());
  });

  it("filters by status and updated_after, and the cursor keeps the filters", async () => {
    const merchant = await createMerchant();
    const id = merchant.merchant.id;
    const base = "2026-04-01T00:00:00.000Z";
    await seedTransactions([
      ...Array.from({ length: 5 }, (_, i) => transactionRow(id, { status: "completed", updatedAt: ms(base, 1000 + i) })),
      ...Array.from({ length: 3 }, (_, i) => transactionRow(id, { status: "completed", updatedAt: ms(base, i) })),
      ...Array.from({ length: 4 }, (_, i) => transactionRow(id, { status: "failed", updatedAt: ms(base, 2000 + i) })),
    ]);

    const completed = await walk("/v1/transactions?status=completed&limit=2", merchant.api_key);
    expect(completed.ids).toHaveLength(8);
    expect(completed.pages.flatMap((p) => p.transactions).every((t) => t.status === "completed")).toBe(true);

    // updated_after is strict, accepts an offset, and combines with status.
    const after = ms(base, 1000).replace("Z", "+00:00");
    const recent = await walk(`/v1/transactions?status=completed&updated_after=${encodeURIComponent(after)}&limit=3`, merchant.api_key);
    expect(recent.ids).toHaveLength(4);
    const everything = await walk(`/v1/transactions?updated_after=${encodeURIComponent(after)}&limit=3`, merchant.api_key);
    expect(everything.ids).toHaveLength(8);

    // Repeating the first request's filters with the cursor is the same walk.
    const first = await getJson<PageBody>("/v1/transactions?status=failed&limit=3", merchant.api_key);
    const second = await getJson<PageBody>(`/v1/transactions?status=failed&limit=3&cursor=${first.next_cursor}`, merchant.api_key);
    expect(second.transactions.map((t) => t.status)).toEqual(["failed"]);
    expect(second.next_cursor).toBeNull();
  });

  it("uses a page size of 50 by default and accepts 1 and 100", async () => {
    const merchant = await createMerchant();
    await seedTransactions(Array.from({ length: 101 }, () => transactionRow(merchant.merchant.id)));
    expect((await getJson<PageBody>("/v1/transactions", merchant.api_key)).transactions).toHaveLength(50);
    expect((await getJson<PageBody>("/v1/transactions?limit=1", merchant.api_key)).transactions).toHaveLength(1);
    const full = await getJson<PageBody>("/v1/transactions?limit=100", merchant.api_key);
    expect(full.transactions).toHaveLength(100);
    expect(full.next_cursor).not.toBeNull();
  });

  it("is empty for a merchant without transactions", async () => {
    const merchant = await createMerchant();
    expect(await getJson<PageBody>("/v1/transactions", merchant.api_key)).toEqual({ transactions: [], next_cursor: null });
  });
});

describe("status API: history", () => {
  it("lists operations oldest first", async () => {
    const merchant = await createMerchant();
    const tx = await seedTransaction(merchant.merchant.id, { status: "completed" });
    const ids = { merchantId: merchant.merchant.id, transactionId: tx.id };
    await seedOperation({ ...ids, id: "op_3", type: "capture", createdAt: "2026-01-01T10:02:00.000Z", metadata: { k: "v" } });
    await seedOperation({ ...ids, id: "op_1", type: "authorization", createdAt: "2026-01-01T10:00:00.000Z" });
    await seedOperation({ ...ids, id: "op_2", type: "3ds", createdAt: "2026-01-01T10:01:00.000Z", hasFailed: null });

    const body = await getJson<OperationsBody>(`/v1/transactions/${tx.id}/operations`, merchant.api_key);
    expect(body.transaction_id).toBe(tx.id);
    expect(body.operations.map((op) => op.id)).toEqual(["op_1", "op_2", "op_3"]);
    expect(body.operations[2]).toEqual({
      id: "op_3",
      type: "capture",
      amount: "10.50",
      currency: "EUR",
      is_attempt: false,
      has_failed: false,
      is_accountable: true,
      gateway_operation_id: null,
      error_code: null,
      error_message: null,
      payment_type: "card",
      metadata: { k: "v" },
      created_at: "2026-01-01T10:02:00.000Z",
    });
  });

  it("lists the events applied to the transaction oldest first, leaving out pending, rejected and ignored ones", async () => {
    const merchant = await createMerchant();
    const tx = await seedTransaction(merchant.merchant.id);
    const ids = { merchantId: merchant.merchant.id, transactionId: tx.id };
    await seedEvent({ ...ids, id: "ev_late", name: "transaction.captured", firedAt: "2026-01-01T10:03:00.000Z" });
    await seedEvent({ ...ids, id: "ev_early", firedAt: "2026-01-01T10:00:00.000Z", deliveries: 3 });
    await seedEvent({ ...ids, id: "ev_stale", firedAt: "2026-01-01T10:01:00.000Z", outcome: "stale" });
    await seedEvent({ ...ids, id: "ev_pending", firedAt: "2026-01-01T10:02:00.000Z", outcome: "pending", processedAt: null });
    await seedEvent({ ...ids, id: "ev_rejected", outcome: "rejected" });
    await seedEvent({ ...ids, id: "ev_ignored", outcome: "ignored" });

    const body = await getJson<EventsBody>(`/v1/transactions/${tx.id}/events`, merchant.api_key);
    expect(body.events.map((e) => [e.id, e.outcome])).toEqual([
      ["ev_early", "applied"],
      ["ev_stale", "stale"],
      ["ev_late", "applied"],
    ]);
    expect(body.events[0]).toEqual({
      id: "ev_early",
      name: "transaction.authorized",
      fired_at: "2026-01-01T10:00:00.000Z",
      outcome: "applied",
      deliveries: 3,
      first_received_at: "2026-01-01T10:00:02.000Z",
      processed_at: "2026-01-01T10:00:03.000Z",
    });
  });

  it("answers empty histories for a transaction without operations or events", async () => {
    const merchant = await createMerchant();
    const tx = await seedTransaction(merchant.merchant.id);
    expect(await getJson(`/v1/transactions/${tx.id}/operations`, merchant.api_key)).toEqual({ transaction_id: tx.id, operations: [] });
    expect(await getJson(`/v1/transactions/${tx.id}/events`, merchant.api_key)).toEqual({ transaction_id: tx.id, events: [] });
  });
});
