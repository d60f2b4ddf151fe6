import { describe, expect, it } from "vitest";
import { signStandardWebhook } from "../../../src/outbound/signature";
import { appWithVars } from "../../support/app";
import { ADMIN, createMerchant, uniqueId } from "../../support/fixtures";
import { sinkUrl } from "../../support/sandbox";
import { getJson, issueKey, revokeKey } from "../../support/status-api";
import { alertsOf, checkUntil, only, refuseKey, type ShownAlert, seedAlert, setAlertUrl, sinkRequests } from "./support";

describe("alerts are tenant-isolated", () => {
  it("never shows a merchant another merchant's alerts, whatever the state, the page or the cursor", async () => {
    const a = await createMerchant();
    const b = await createMerchant();
    const ofA = [];
    for (let i = 0; i < 3; i++) ofA.push(await seedAlert(a.merchant.id));
    const ofB = await seedAlert(b.merchant.id, { state: "resolved", resolvedAt: new Date().toISOString() });

    expect((await alertsOf(b.api_key, "all")).map((alert) => alert.id)).toEqual([ofB.id]);
    expect(await alertsOf(b.api_key, "open")).toEqual([]);
    expect((await alertsOf(a.api_key, "all")).map((alert) => alert.id).sort()).toEqual(ofA.map((row) => row.id).sort());
    // A's cursor carries a position, never a merchant: B following it still reads only B's alerts.
    const page = await getJson<{ next_cursor: string }>("/v1/alerts?state=all&limit=1", a.api_key);
    const followed = await getJson<{ alerts: ShownAlert[] }>(`/v1/alerts?cursor=${page.next_cursor}`, b.api_key);
    expect(followed.alerts.every((alert) => alert.id === ofB.id)).toBe(true);
  });

  it("raises a merchant's own conditions only, and notifies only its own alert URL, signed with its own secret", async () => {
    const a = await createMerchant();
    const b = await createMerchant();
    const sinkA = uniqueId("alerts");
    const sinkB = uniqueId("alerts");
    const secretA = (await setAlertUrl(a.merchant.id, sinkUrl(sinkA))).secret ?? "";
    const secretB = (await setAlertUrl(b.merchant.id, sinkUrl(sinkB))).secret ?? "";
    await refuseKey(a.merchant.id, true);
    await checkUntil(a.api_key, (alerts) => expect(only(alerts, "smart_router_key_refused")).toHaveLength(1));
    expect(await alertsOf(b.api_key)).toEqual([]);
    expect(await sinkRequests(sinkB)).toEqual([]);
    const [request] = await sinkRequests(sinkA);
    const id = request?.headers["webhook-id"] ?? "";
    const timestamp = Number(request?.headers["webhook-timestamp"]);
    const signatures = (request?.headers["webhook-signature"] ?? "").split(" ");
    expect(signatures).toContain(await signStandardWebhook(secretA, id, timestamp, request?.body ?? ""));
    expect(signatures).not.toContain(await signStandardWebhook(secretB, id, timestamp, request?.body ?? ""));
    // Never the fulfilment secret: a system verifying alerts must not be able to forge a fulfilment notification.
    expect(signatures).not.toContain(await signStandardWebhook(a.fulfillment.signing_secret, id, timestamp, request?.body ?? ""));
    // No credential of the merchant travels in the notification.
    for (const secret of [a.api_key, a.webhook.password, a.fulfillment.signing_secret, secretA])
      expect(request?.body).not.toContain(secret);
  });

  it("answers a revoked key 401", async () => {
    const merchant = await createMerchant();
    const key = await issueKey(merchant);
    await revokeKey(merchant, key.id);
    const response = await getJson<{ error: { code: string } }>("/v1/alerts", key.key, 401);
    expect(response.error.code).toBe("unauthorized");
  });

  it("refuses a loopback alert URL unless ALLOW_LOOPBACK_FULFILLMENT_URLS allows it", async () => {
    const merchant = await createMerchant();
    const production = appWithVars({ ALLOW_LOOPBACK_FULFILLMENT_URLS: undefined });
    const response = await production(`/admin/merchants/${merchant.merchant.id}`, {
      method: "PATCH",
      headers: ADMIN,
      body: JSON.stringify({ alerts: { url: "http://127.0.0.1:9999/alerts" } }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(
      /^alerts\.url: a loopback URL is accepted only/,
    );
  });
});
