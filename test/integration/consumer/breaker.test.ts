import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { breakerSettingsFrom } from "../../../src/rate-limiter/breaker";
import { ADMIN, call } from "../../support/fixtures";
import { eventually, openShop } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";

/** How long the consumer faces the failing API, in real time. */
const OUTAGE_MS = 4_000;
/**
 * Calls already on their way when the breaker opens: a consumer batch fetches up to 6 events of a merchant at once
 * (FETCH_CONCURRENCY in src/smart-router/fetch-back.ts), after its one list call; two batches may overlap.
 */
const IN_FLIGHT_SLACK = 2 * (6 + 1);

type ApiCounters = { api: { sandbox: { requests: number; injected_5xx: number; succeeded: number } } };

const settledEvents = (merchantId: string) =>
  shardedDb
    .prepare("SELECT count(*) AS n FROM events WHERE merchant_id = ? AND outcome IN ('applied', 'stale')")
    .bind(merchantId)
    .first<{ n: number }>();

describe("consumer: circuit breaker against a failing Smart Router API", () => {
  it("stops calling an API that answers 503 to everything (one probe per interval), then applies every event once it heals", async () => {
    const breaker = breakerSettingsFrom(env);
    const shop = await openShop({ unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const apiCounters = async () => ((await shop.counters()) as ApiCounters).api.sandbox;
    await shop.settings({ chaos: { api_5xx_rate: 1 } });
    for (let i = 0; i < 12; i++) await shop.pay({ card: "4242424242424242", amount: `${i + 1}.00`, currency: "EUR" });
    const events = (await shop.truth()).events.length;
    expect(events).toBeGreaterThanOrEqual(30);

    const started = Date.now();
    await shop.relay({ rounds: 5 });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_MS - (Date.now() - started))));
    const duringOutage = await apiCounters();
    const elapsed = Date.now() - started;
    const bound = breaker.failureThreshold + IN_FLIGHT_SLACK + Math.ceil(elapsed / breaker.probeIntervalMs);
    expect(duringOutage.injected_5xx).toBeGreaterThanOrEqual(breaker.failureThreshold);
    expect(duringOutage.requests).toBeLessThanOrEqual(bound);

    await shop.settings({ chaos: { api_5xx_rate: 0 } });
    await eventually(async () => expect((await settledEvents(merchantId))?.n).toBe(events), {
      timeoutMs: breaker.probeIntervalMs + 15_000,
      intervalMs: 200,
    });
    const truth = await shop.truth();
    for (const transaction of truth.transactions) {
      const row = await shardedDb
        .prepare("SELECT status FROM transactions WHERE merchant_id = ? AND id = ?")
        .bind(merchantId, transaction.id)
        .first<{ status: string }>();
      expect(row?.status).toBe(transaction.status);
    }
    // Waiting behind the open breaker spent no retries: nothing reached the dead-letter queue.
    const letters = await call(`/admin/dead-letters?merchant=${merchantId}`, { headers: ADMIN });
    expect(((await letters.json()) as { dead_letters: unknown[] }).dead_letters).toHaveLength(0);
  }, 60_000);
});
