import { describe, expect, it } from "vitest";
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
