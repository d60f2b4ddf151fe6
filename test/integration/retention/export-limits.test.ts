import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createApp } from "../../../src/app";
import { EXPORT_PAGE_SIZE } from "../../../src/transactions/export";
import { EXPORT_LEASE_SECONDS, MAX_CONCURRENT_EXPORTS, takeExportSlot } from "../../../src/transactions/export-slots";
import { type CreatedMerchant, createMerchant } from "../../support/fixtures";
import { shardedDb } from "../../support/shards";
import { dbOfMerchant, issueKey, seedTransactions, transactionRow } from "../../support/status-api";

interface ErrorBody {
  error: { code: string; message: string; request_id: string };
}

const QUERY = "created_after=2026-03-01T00:00:00Z&created_before=2026-03-08T00:00:00Z&format=ndjson";

// In-process, so a response nobody reads keeps its stream (and its slot) open after the first page, as a slow client does.
const app = createApp();
const startExport = (apiKey: string, query = QUERY) =>
  app.fetch(new Request(`https://edge.test/v1/transactions/export?${query}`, { headers: { authorization: `Bearer ${apiKey}` } }), env);

/** A merchant with more than one page in the range, so an unread export is still streaming. */
async function merchantWithTwoPages(): Promise<CreatedMerchant> {
  const merchant = await createMerchant();
  const id = merchant.merchant.id;
  await seedTransactions(
    Array.from({ length: EXPORT_PAGE_SIZE + 5 }, (_, i) =>
      transactionRow(id, { createdAt: new Date(Date.parse("2026-03-02T00:00:00Z") + i * 1000).toISOString() }),
    ),
  );
  return merchant;
}

const leasesOf = async (merchantId: string) =>
  (await shardedDb.prepare("SELECT count(*) AS n FROM export_leases WHERE merchant_id = ?").bind(merchantId).first<{ n: number }>())?.n ??
  0;

/** Reads a response to its end; the number of NDJSON lines. */
const linesOf = async (response: Response) =>
  new TextDecoder()
    .decode(await response.arrayBuffer())
    .split("\n")
    .filter(Boolean).length;

async function expectRefused(response: Response) {
  expect(response.status).toBe(429);
  expect(response.headers.get("retry-after")).toBe(String(EXPORT_LEASE_SECONDS));
  const body = (await response.json()) as ErrorBody;
  expect(body.error.code).toBe("rate_limited");
  expect(body.error.message).toContain(`at most ${MAX_CONCURRENT_EXPORTS} exports`);
  expect(body.error.request_id).toEqual(expect.any(String));
}

describe("export slots: at most 2 exports stream at once per merchant", () => {
  let merchant: CreatedMerchant;

  beforeAll(async () => {
    merchant = await merchantWithTwoPages();
  });

  it("streams two at once, refuses a third with 429 + Retry-After, and takes it again once one has ended", async () => {
    const first = await startExport(merchant.api_key);
    const second = await startExport(merchant.api_key);
    expect([first.status, second.status]).toEqual([200, 200]);
    await expectRefused(await startExport(merchant.api_key));

    // Read to its end: the whole file, and its slot free before the body ends.
    expect(await linesOf(first)).toBe(EXPORT_PAGE_SIZE + 5);
    const third = await startExport(merchant.api_key);
    expect(third.status).toBe(200);
    expect(await linesOf(third)).toBe(EXPORT_PAGE_SIZE + 5);
    expect(await linesOf(second)).toBe(EXPORT_PAGE_SIZE + 5);
    expect(await leasesOf(merchant.merchant.id)).toBe(0);
  });

  it("frees the slot of an export the client cancels", async () => {
    const held = [await startExport(merchant.api_key), await startExport(merchant.api_key)];
    await expectRefused(await startExport(merchant.api_key));
    await held[0]?.body?.cancel();
    const next = await startExport(merchant.api_key);
    expect(next.status).toBe(200);
    await next.body?.cancel();
    await held[1]?.body?.cancel();
    expect(await leasesOf(merchant.merchant.id)).toBe(0);
  });

  it("frees the slot of an empty export as soon as it ends", async () => {
    const empty = "created_after=2020-01-01T00:00:00Z&created_before=2020-01-02T00:00:00Z&format=ndjson";
    for (let i = 0; i < 3; i++) expect(await linesOf(await startExport(merchant.api_key, empty))).toBe(0);
    expect(await leasesOf(merchant.merchant.id)).toBe(0);
  });

  it("gives two of three exports started at the same moment a slot, never three", async () => {
    const responses = await Promise.all([1, 2, 3].map(() => startExport(merchant.api_key)));
    expect(responses.map((response) => response.status).sort()).toEqual([200, 200, 429]);
    for (const response of responses) await response.body?.cancel();
    expect(await leasesOf(merchant.merchant.id)).toBe(0);
  });
});

describe("export slots: a stream that crashed or stalls", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("frees a crashed stream's slot once its lease lapses (never released, nothing renews it)", async () => {
    const merchant = await merchantWithTwoPages();
    const id = merchant.merchant.id;
    const db = await dbOfMerchant(id);
    // Taken and abandoned, as by an isolate that died mid-stream.
    for (let i = 0; i < MAX_CONCURRENT_EXPORTS; i++) await takeExportSlot({ db, merchantId: id });
    await expectRefused(await startExport(merchant.api_key));

    await shardedDb.prepare("UPDATE export_leases SET expires_at = '2000-01-01T00:00:00.000Z' WHERE merchant_id = ?").bind(id).run();
    const after = await startExport(merchant.api_key);
    expect(after.status).toBe(200);
    // The lapsed rows were swept when the slot was taken.
    expect(await leasesOf(id)).toBe(1);
    await after.body?.cancel();
    expect(await leasesOf(id)).toBe(0);
  });

  it("renews a running stream's lease after half a lease, and takes it again after a lapse only if a slot is free", async () => {
    const merchant = await createMerchant();
    const id = merchant.merchant.id;
    const db = await dbOfMerchant(id);
    const slot = await takeExportSlot({ db, merchantId: id });
    const expiry = async () =>
      (await shardedDb.prepare("SELECT expires_at FROM export_leases WHERE merchant_id = ?").bind(id).first<{ expires_at: string }>())
        ?.expires_at;
    await shardedDb.prepare("UPDATE export_leases SET expires_at = '2000-01-01T00:00:00.000Z' WHERE merchant_id = ?").bind(id).run();

    // Within half a lease of the last renewal: no write.
    await slot.renew();
    expect(await expiry()).toBe("2000-01-01T00:00:00.000Z");

    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + (EXPORT_LEASE_SECONDS * 1000) / 2);
    await slot.renew();
    expect(Date.parse((await expiry()) ?? "")).toBeGreaterThan(Date.now() - 1000);

    // Lapsed and swept while the client stalled, and two other exports took both slots: the stream is cut off.
    await shardedDb.prepare("DELETE FROM export_leases WHERE merchant_id = ?").bind(id).run();
    const others = [await takeExportSlot({ db, merchantId: id }), await takeExportSlot({ db, merchantId: id })];
    vi.setSystemTime(Date.now() + EXPORT_LEASE_SECONDS * 1000);
    await expect(slot.renew()).rejects.toThrow(/lapsed/);

    // One of them ends: the stalled stream gets its slot back.
    await others[0]?.release();
    vi.setSystemTime(Date.now() + EXPORT_LEASE_SECONDS * 1000);
    await slot.renew();
    expect(await leasesOf(id)).toBe(2);
  });
});

describe("export slots: one merchant's exports never hold another's", () => {
  it("lets another merchant stream while the first holds both its slots, and counts every key of the merchant together", async () => {
    const [busy, other] = [await merchantWithTwoPages(), await merchantWithTwoPages()];
    const held = [await startExport(busy.api_key), await startExport(busy.api_key)];
    expect(held.map((response) => response.status)).toEqual([200, 200]);

    const theirs = await startExport(other.api_key);
    expect(theirs.status).toBe(200);
    expect(await linesOf(theirs)).toBe(EXPORT_PAGE_SIZE + 5);

    // A second API key of the busy merchant is the same merchant: no third stream by switching keys.
    const secondKey = await issueKey(busy);
    await expectRefused(await startExport(secondKey.key));
    for (const response of held) await response.body?.cancel();
  });
});
