import { afterEach, describe, expect, it, vi } from "vitest";
import { appRecordingDeliveries } from "../../support/app";
import { basic, createMerchant, deliver } from "../../support/fixtures";

describe("webhook edge: accepted deliveries", () => {
  it("enqueues a versioned message and answers 200 {received:true}", async () => {
    const merchant = await createMerchant();
    const app = appRecordingDeliveries();
    const response = await app.fetch(merchant.webhook.path, {
      method: "POST",
      headers: { authorization: basic(merchant.webhook.username, merchant.webhook.password) },
      body: JSON.stringify({ event_id: "ev_abc123", event_type: "transaction.captured" }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ received: true });
    expect(app.sent).toHaveLength(1);
    const [message] = app.sent;
    expect(message).toMatchObject({ v: 1, merchant_id: merchant.merchant.id, event_id: "ev_abc123", event_type: "transaction.captured" });
    expect(message?.delivery_id).toMatch(/.+/);
    expect(new Date(message?.received_at ?? "").toISOString()).toBe(message?.received_at);
  });

  it("accepts a body without event_type, with extra fields and without a Content-Type", async () => {
    const merchant = await createMerchant();
    const app = appRecordingDeliveries();
    const response = await app.fetch(merchant.webhook.path, {
      method: "POST",
      headers: { authorization: basic(merchant.webhook.username, merchant.webhook.password) },
      body: JSON.stringify({ event_id: "ev_xyz", extra: { nested: true }, project_id: "proj_1" }),
    });
    expect(response.status).toBe(200);
    expect(app.sent[0]).toMatchObject({ event_id: "ev_xyz", event_type: null });
  });

  it("goes through the worker's real queue binding", async () => {
    const merchant = await createMerchant();
    const response = await deliver(merchant, { event_id: "ev_real1", event_type: "transaction.authorized" });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ received: true });
  });

  it("accepts the scheme name in any case", async () => {
    const merchant = await createMerchant();
    const header = basic(merchant.webhook.username, merchant.webhook.password).replace("Basic", "bAsIc");
    const response = await deliver(merchant, { event_id: "ev_case1" }, { authorization: header });
    expect(response.status).toBe(200);
  });
});

describe("webhook edge: log lines", () => {
  afterEach(() => vi.restoreAllMocks());

  /** The edge's `webhook.delivery` lines while `act` runs, parsed. */
  async function deliveryLines(act: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
    const lines: string[] = [];
    for (const level of ["log", "warn", "error", "info", "debug"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        lines.push(args.map(String).join(" "));
      });
    }
    await act();
    return lines.filter((line) => line.includes('"webhook.delivery"')).map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  it("logs no line for an enqueued delivery (its inbox row records it) and a warn line for a refused one", async () => {
    const merchant = await createMerchant();
    const accepted = await deliveryLines(async () => expect((await deliver(merchant, { event_id: "ev_quiet" })).status).toBe(200));
    expect(accepted).toEqual([]);
    const refused = await deliveryLines(async () =>
      expect((await deliver(merchant, { event_id: "ev_loud" }, { authorization: basic(merchant.webhook.username, "wrong") })).status).toBe(
        401,
      ),
    );
    expect(refused).toEqual([expect.objectContaining({ level: "warn", outcome: "unauthorized", merchant_id: merchant.merchant.id })]);
  });
});
