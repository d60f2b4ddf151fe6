import { describe, expect, it } from "vitest";
import { ALERT_DEFAULTS } from "../../../src/merchants/alert-thresholds";
import { ADMIN, call, createMerchant } from "../../support/fixtures";
import { getJson } from "../../support/status-api";
import { alertsOf, type ShownAlert, seedAlert, setAlertSettings } from "./support";

const at = (minute: number) => new Date(Date.UTC(2026, 10, 1, 10, minute)).toISOString();

describe("GET /v1/alerts", () => {
  it("lists the open alerts by default, every alert with state=all, most recently opened first, in the contract's shape", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const older = await seedAlert(merchantId, { openedAt: at(1) });
    const resolved = await seedAlert(merchantId, {
      kind: "smart_router_key_refused",
      transactionId: null,
      state: "resolved",
      openedAt: at(2),
      resolvedAt: at(3),
      detail: "Smart Router refuses the merchant's secret key.",
    });
    const newer = await seedAlert(merchantId, { kind: "apm_pending", openedAt: at(4) });

    const open = await getJson<{ alerts: ShownAlert[]; next_cursor: string | null }>("/v1/alerts", merchant.api_key);
    expect(open).toEqual({
      alerts: [newer, older].map((row) => ({
        id: row.id,
        kind: row.kind,
        state: "open",
        transaction_id: row.transactionId,
        opened_at: row.openedAt,
        resolved_at: null,
        acknowledged_at: null,
        detail: row.detail,
      })),
      next_cursor: null,
    });
    const all = await getJson<{ alerts: ShownAlert[] }>("/v1/alerts?state=all", merchant.api_key);
    expect(all.alerts.map((alert) => alert.id)).toEqual([newer.id, resolved.id, older.id]);
    expect(all.alerts[1]).toMatchObject({ state: "resolved", transaction_id: null, resolved_at: at(3) });
  });

  it("walks every alert exactly once in keyset pages, ties on opened_at broken by id, the cursor keeping the state", async () => {
    const merchant = await createMerchant();
    const seeded = [];
    for (let i = 0; i < 7; i++) seeded.push(await seedAlert(merchant.merchant.id, { openedAt: at(Math.floor(i / 2)) }));
    await seedAlert(merchant.merchant.id, { state: "resolved", openedAt: at(9), resolvedAt: at(10) });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    // Ends on the page whose next_cursor is null (4 pages of 2).
    do {
      const path: string = `/v1/alerts?limit=2${cursor ? `&cursor=${cursor}` : ""}`;
      const page: { alerts: ShownAlert[]; next_cursor: string | null } = await getJson(path, merchant.api_key);
      expect(page.alerts.length).toBeLessThanOrEqual(2);
      seen.push(...page.alerts.map((alert) => alert.id));
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor !== null);
    const expected = [...seeded].sort((a, b) => (a.openedAt === b.openedAt ? (a.id < b.id ? 1 : -1) : a.openedAt < b.openedAt ? 1 : -1));
    expect(seen).toEqual(expected.map((row) => row.id));
    expect(pages).toBe(4);
    expect(await alertsOf(merchant.api_key, "all")).toHaveLength(8);
  });

  it("is in the OpenAPI document, with the Alert schema", async () => {
    const response = await call("/v1/openapi.json");
    const document = (await response.json()) as {
      paths: Record<string, { get?: { parameters?: { name: string }[] } }>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    expect(document.paths["/v1/alerts"]?.get?.parameters?.map((parameter) => parameter.name).sort()).toEqual(["cursor", "limit", "state"]);
    expect(Object.keys(document.components.schemas.Alert?.properties ?? {}).sort()).toEqual(
      ["acknowledged_at", "detail", "id", "kind", "opened_at", "resolved_at", "state", "transaction_id"].sort(),
    );
  });
});

describe("per-merchant alert settings", () => {
  it("shows the defaults, takes a partial PATCH, keeps what it does not name, resets with null, and audits each change", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const shown = (await (await call(`/admin/merchants/${merchantId}`, { headers: ADMIN })).json()) as { merchant: { alerts: unknown } };
    expect(shown.merchant.alerts).toEqual({ ...ALERT_DEFAULTS, url: null, signing_secret_set: false });

    expect(
      (await setAlertSettings(merchantId, { authorized_uncaptured_hours: 48, url: "https://alerts.example.com/hook" })).alerts,
    ).toEqual({
      ...ALERT_DEFAULTS,
      authorized_uncaptured_hours: 48,
      url: "https://alerts.example.com/hook",
      signing_secret_set: true,
    });
    expect((await setAlertSettings(merchantId, { forged_per_hour: 500 })).alerts).toEqual({
      ...ALERT_DEFAULTS,
      authorized_uncaptured_hours: 48,
      forged_per_hour: 500,
      url: "https://alerts.example.com/hook",
      signing_secret_set: true,
    });
    expect((await setAlertSettings(merchantId, { url: null })).alerts).toMatchObject({ authorized_uncaptured_hours: 48, url: null });
    expect((await setAlertSettings(merchantId, null)).alerts).toEqual({ ...ALERT_DEFAULTS, url: null, signing_secret_set: false });

    const audit = (await (await call("/admin/audit", { headers: ADMIN })).json()) as { entries: { action: string; target: string }[] };
    const updates = audit.entries.filter((entry) => entry.target === `merchant:${merchantId}` && entry.action === "merchant.update");
    expect(updates).toHaveLength(4);
  });
});
