import { afterEach, describe, expect, it, vi } from "vitest";
import { ADMIN, call } from "../../support/fixtures";
import { eventually, openShop, SANDBOX } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";

interface SinkRequest {
  headers: Record<string, string>;
  body: string;
}

async function sinkRequests(name: string): Promise<SinkRequest[]> {
  const response = await fetch(`${SANDBOX}/_sandbox/sink/${name}`);
  return ((await response.json()) as { requests: SinkRequest[] }).requests;
}

/** Verifies a Standard Webhooks signature the way a merchant's endpoint would, independently of our signing code. */
async function verifySignature(secret: string, request: SinkRequest): Promise<boolean> {
  const raw = Uint8Array.from(atob(secret.replace(/^whsec_/, "")), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  const signed = `${request.headers["webhook-id"]}.${request.headers["webhook-timestamp"]}.${request.body}`;
  const signatures = (request.headers["webhook-signature"] ?? "").split(" ");
  for (const signature of signatures) {
    const [version, value] = signature.split(",");
    if (version !== "v1" || !value) continue;
    const mac = Uint8Array.from(atob(value), (c) => c.charCodeAt(0));
    if (await crypto.subtle.verify("HMAC", key, mac, new TextEncoder().encode(signed))) return true;
  }
  return false;
}

const fulfilment = (merchantId: string, transactionId: string) =>
  shardedDb
    .prepare("SELECT status, attempts, last_error FROM fulfillments WHERE merchant_id = ? AND transaction_id = ?")
    .bind(merchantId, transactionId)
    .first<{ status: string; attempts: number; last_error: string | null }>();

/** The worker's `fulfillment.delivery` log lines from now on, parsed (console spied until the test ends). */
function fulfilmentLines(): () => Record<string, unknown>[] {
  const lines: string[] = [];
  for (const level of ["log", "warn", "error", "info", "debug"] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
    });
  }
  return () => lines.filter((line) => line.includes('"fulfillment.delivery"')).map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("fulfilment", () => {
  afterEach(() => vi.restoreAllMocks());

  it("notifies once per captured payment, for cards and APMs alike, signed per Standard Webhooks", async () => {
    const shop = await openShop({ fulfillment: true, unlimited: true });
    const logged = fulfilmentLines();
    const card = await shop.pay({ card: "4242424242424242", amount: "10.00", currency: "EUR" });
    const apm = await shop.pay({ apm: "sandbox-apm", flow: "two-step", amount: "20.00", currency: "EUR" });
    const declined = await shop.pay({ card: "4000000000000002", amount: "30.00", currency: "EUR" });
    await shop.relay({ rounds: 10 });
    const requests = await eventually(async () => {
      const received = await sinkRequests(shop.projectId);
      expect(received.length).toBe(2);
      return received;
    });
    // Deliveries repeated afterwards change nothing.
    await shop.relay({ rounds: 3 });
    const paid = requests.map((r) => (JSON.parse(r.body) as { data: { transaction: { id: string; status: string } } }).data.transaction);
    expect(paid.map((t) => t.id).sort()).toEqual([card.id, apm.id].sort());
    expect(paid.map((t) => t.id)).not.toContain(declined.id);
    for (const request of requests) {
      expect(await verifySignature(shop.merchant.fulfillment.signing_secret, request)).toBe(true);
      expect(await verifySignature("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", request)).toBe(false);
    }
    expect((await fulfilment(shop.merchant.merchant.id, card.id))?.status).toBe("delivered");
    // A delivered notification logs no line: the outbox row records it.
    expect(logged()).toEqual([]);
  });

  it("retries a failing merchant endpoint until its horizon (scaled down here), dead-letters it, and delivers on redrive", async () => {
    const shop = await openShop({ fulfillment: true, unlimited: true });
    const logged = fulfilmentLines();
    await fetch(`${SANDBOX}/_sandbox/sink/${shop.projectId}`, { method: "PUT", body: JSON.stringify({ status: 503, times: 10 }) });
    const payment = await shop.pay({ card: "4242424242424242", amount: "15.00", currency: "EUR" });
    await shop.relay({ rounds: 10 });
    const failed = await eventually(
      async () => {
        const row = await fulfilment(shop.merchant.merchant.id, payment.id);
        expect(row?.status).toBe("failed");
        return row;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(failed?.attempts).toBeGreaterThanOrEqual(3);
    expect(failed?.last_error).toMatch(/503/);
    // Each failed attempt logs a warn line for on-call.
    expect(logged().length).toBeGreaterThanOrEqual(3);
    expect(logged().every((line) => line.level === "warn" && line.outcome === "failed" && line.transaction_id === payment.id)).toBe(true);
    const letters = (await (await call(`/admin/dead-letters?merchant=${shop.merchant.merchant.id}`, { headers: ADMIN })).json()) as {
      dead_letters: { id: string; queue: string; error: string }[];
    };
    expect(letters.dead_letters).toHaveLength(1);
    expect(letters.dead_letters[0]).toMatchObject({
      queue: "smart-router-fulfillments",
      error: expect.stringMatching(/^fulfilment gave up after \d+ tries over \d+ s: merchant answered 503$/),
    });

    await fetch(`${SANDBOX}/_sandbox/sink/${shop.projectId}`, { method: "PUT", body: JSON.stringify({ status: 200 }) });
    await call("/admin/dead-letters/redrive", {
      method: "POST",
      headers: ADMIN,
      body: JSON.stringify({ ids: [letters.dead_letters[0]?.id] }),
    });
    await eventually(async () => expect((await fulfilment(shop.merchant.merchant.id, payment.id))?.status).toBe("delivered"));
    const ids = new Set((await sinkRequests(shop.projectId)).map((r) => r.headers["webhook-id"]));
    // Every attempt carried the same webhook-id, so the merchant can deduplicate.
    expect(ids.size).toBe(1);
  }, 45_000);
});
