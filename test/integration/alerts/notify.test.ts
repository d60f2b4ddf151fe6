import { describe, expect, it } from "vitest";
import { signStandardWebhook } from "../../../src/outbound/signature";
import { createMerchant, uniqueId } from "../../support/fixtures";
import { sinkUrl } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";
import { checkAlerts, checkUntil, only, refuseKey, type ShownAlert, setAlertUrl, sinkAnswers, sinkRequests } from "./support";

/** Checks a delivery's Standard Webhooks signature as a merchant would, with the signing secret it was given once. */
async function verify(request: { headers: Record<string, string>; body: string }, signingSecret: string) {
  const id = request.headers["webhook-id"] ?? "";
  const timestamp = Number(request.headers["webhook-timestamp"]);
  return (request.headers["webhook-signature"] ?? "")
    .split(" ")
    .includes(await signStandardWebhook(signingSecret, id, timestamp, request.body));
}

const notificationOf = (alertId: string) =>
  shardedDb
    .prepare(
      "SELECT notification_type AS type, notification_status AS status, notification_attempts AS attempts, notification_error AS error FROM alerts WHERE id = ?",
    )
    .bind(alertId)
    .first<{ type: string | null; status: string | null; attempts: number; error: string | null }>();

/** A merchant with an alert URL (a sink of the emulator) and its Smart Router key refused: one alert to notify. */
async function merchantWithRefusedKey() {
  const merchant = await createMerchant();
  const sink = uniqueId("alerts");
  const { secret } = await setAlertUrl(merchant.merchant.id, sinkUrl(sink));
  if (!secret) throw new Error("setting the alert URL issued no alert signing secret");
  await refuseKey(merchant.merchant.id, true);
  return { merchant, sink, alertSecret: secret };
}

describe("alert URL notifications", () => {
  it("POSTs alert.opened then alert.resolved, verifiable with the alert signing secret and never with the fulfilment one", async () => {
    const { merchant, sink, alertSecret } = await merchantWithRefusedKey();
    const [opened] = await checkUntil(merchant.api_key, (alerts) => {
      const found = only(alerts, "smart_router_key_refused");
      expect(found).toHaveLength(1);
      return found;
    });
    const [first] = await sinkRequests(sink);
    expect(first).toBeDefined();
    if (!first) return;
    expect(first.headers["content-type"]).toBe("application/json");
    expect(first.headers["webhook-id"]).toBe(`${opened?.id}_opened`);
    expect(await verify(first, alertSecret)).toBe(true);
    expect(await verify(first, merchant.fulfillment.signing_secret)).toBe(false);
    expect(JSON.parse(first.body)).toEqual({
      type: "alert.opened",
      timestamp: expect.any(String),
      data: { merchant_id: merchant.merchant.id, alert: opened },
    });
    expect((await notificationOf(opened?.id ?? ""))?.status).toBe("delivered");

    await refuseKey(merchant.merchant.id, false);
    const [resolved] = await checkUntil(merchant.api_key, (alerts) => {
      const found = only(alerts, "smart_router_key_refused");
      expect(found).toMatchObject([{ state: "resolved" }]);
      return found;
    });
    const requests = await sinkRequests(sink);
    expect(requests).toHaveLength(2);
    const second = requests[1];
    if (!second) return;
    expect(second.headers["webhook-id"]).toBe(`${opened?.id}_resolved`);
    expect(await verify(second, alertSecret)).toBe(true);
    expect(await verify(second, merchant.fulfillment.signing_secret)).toBe(false);
    const body = JSON.parse(second.body) as { type: string; data: { alert: ShownAlert } };
    expect(body.type).toBe("alert.resolved");
    expect(body.data.alert).toEqual(resolved);

    // Delivered: later runs send nothing more.
    await checkAlerts();
    expect(await sinkRequests(sink)).toHaveLength(2);
  });

  it("retries a failing alert URL on later runs, never follows a redirect, and gives up past the horizon, recorded", async () => {
    const { merchant, sink } = await merchantWithRefusedKey();
    await sinkAnswers(sink, 307);
    // Tests run the retry schedule ×RETRY_SCHEDULE_SCALE (0.00002): waits of 1 s, a 24 h horizon of about 1.7 s.
    const start = Date.now();
    const [alert] = await checkUntil(
      merchant.api_key,
      (alerts) => {
        const found = only(alerts, "smart_router_key_refused");
        expect(found).toHaveLength(1);
        return found;
      },
      { now: start },
    );
    const id = alert?.id ?? "";
    expect(await notificationOf(id)).toEqual({
      type: "alert.opened",
      status: "pending",
      attempts: 1,
      error: "alert url answered 307 (redirects are not followed)",
    });
    // Not due again yet: nothing sent.
    await checkAlerts(start + 100);
    expect(await sinkRequests(sink)).toHaveLength(1);
    await checkAlerts(start + 1_100);
    expect(await sinkRequests(sink)).toHaveLength(2);
    expect(await notificationOf(id)).toMatchObject({ status: "pending", attempts: 2 });
    await checkAlerts(start + 2_200);
    expect(await notificationOf(id)).toEqual({
      type: "alert.opened",
      status: "failed",
      attempts: 3,
      error: "alert url answered 307 (redirects are not followed)",
    });
    await checkAlerts(start + 10_000);
    expect(await sinkRequests(sink)).toHaveLength(3);
    // Given up on the notification, not on the alert.
    expect(only(await checkUntil(merchant.api_key, (alerts) => alerts), "smart_router_key_refused")).toMatchObject([{ state: "open" }]);
  });

  it("sends nothing for a merchant without an alert URL", async () => {
    const merchant = await createMerchant();
    await refuseKey(merchant.merchant.id, true);
    const [alert] = await checkUntil(merchant.api_key, (alerts) => {
      const found = only(alerts, "smart_router_key_refused");
      expect(found).toHaveLength(1);
      return found;
    });
    expect(await notificationOf(alert?.id ?? "")).toEqual({ type: null, status: null, attempts: 0, error: null });
  });
});
