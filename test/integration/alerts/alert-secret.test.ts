import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { resealPage } from "../../../src/admin/reseal";
import { NO_ALERT_SECRET } from "../../../src/alerts/notify";
import { openDatabase } from "../../../src/db/client";
import { appConfig } from "../../../src/env";
import { secretContext } from "../../../src/merchants/merchants";
import { signStandardWebhook } from "../../../src/outbound/signature";
import { openSecret, sealSecret } from "../../../src/security/vault";
import { ADMIN, type CreatedMerchant, call, createMerchant, uniqueId } from "../../support/fixtures";
import { sinkUrl } from "../../support/sandbox";
import { SHARDS, shardedDb, shardIndexOf } from "../../support/shards";
import { checkAlerts, checkUntil, only, refuseKey, setAlertUrl, sinkRequests } from "./support";

interface SinkRequest {
  headers: Record<string, string>;
  body: string;
}

/** Whether one of the request's `v1,` signatures is `secret`'s, as a merchant's Standard Webhooks verifier checks. */
async function signedWith(request: SinkRequest, secret: string) {
  const id = request.headers["webhook-id"] ?? "";
  const timestamp = Number(request.headers["webhook-timestamp"]);
  return (request.headers["webhook-signature"] ?? "").split(" ").includes(await signStandardWebhook(secret, id, timestamp, request.body));
}

const rotate = (merchantId: string, body?: unknown, headers: Record<string, string> = ADMIN) =>
  call(`/admin/merchants/${merchantId}/alert-secret`, {
    method: "POST",
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

const secretColumns = (merchantId: string) =>
  shardedDb
    .prepare("SELECT alert_secret_ciphertext AS c, alert_secret_key_id AS k FROM merchants WHERE id = ?")
    .bind(merchantId)
    .first<{ c: string | null; k: string | null }>();

/** Raises one alert (the Smart Router key refused) and answers the notifications the sink has received once it is open. */
async function raiseAlert(merchant: CreatedMerchant, sink: string, now = Date.now()) {
  await refuseKey(merchant.merchant.id, true);
  await checkUntil(merchant.api_key, (alerts) => expect(only(alerts, "smart_router_key_refused")).toHaveLength(1), { now });
  return sinkRequests(sink);
}

describe("alert signing secret: issued with the alert URL", () => {
  it("is shown once when the URL is set, kept when the URL changes, dropped when it is cleared, issued anew when set again", async () => {
    const merchant = await createMerchant();
    const id = merchant.merchant.id;
    const first = await setAlertUrl(id, "https://alerts.example.com/a");
    expect(first.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(first.secret).not.toBe(merchant.fulfillment.signing_secret);
    expect(first.response.headers.get("cache-control")).toBe("no-store");
    expect(first.merchant.alerts.signing_secret_set).toBe(true);
    // Shown once: never in the merchant's representation.
    const shown = await (await call(`/admin/merchants/${id}`, { headers: ADMIN })).text();
    expect(shown).not.toContain(first.secret ?? "?");
    expect(shown).toContain('"signing_secret_set":true');

    const before = await secretColumns(id);
    const changed = await setAlertUrl(id, "https://alerts.example.com/b");
    expect(changed.secret).toBeUndefined();
    expect(await secretColumns(id)).toEqual(before);

    const cleared = await setAlertUrl(id, null);
    expect(cleared.secret).toBeUndefined();
    expect(cleared.merchant.alerts.signing_secret_set).toBe(false);
    expect(await secretColumns(id)).toEqual({ c: null, k: null });

    const again = await setAlertUrl(id, "https://alerts.example.com/c");
    expect(again.secret).toMatch(/^whsec_/);
    expect(again.secret).not.toBe(first.secret);
  });

  it("signs notifications with the alert secret; a rotation signs with both during the overlap, then with the new one only", async () => {
    const merchant = await createMerchant();
    const sink = uniqueId("alert-rotation");
    const { secret } = await setAlertUrl(merchant.merchant.id, sinkUrl(sink));
    const rotated = await rotate(merchant.merchant.id, { overlap_hours: 1 });
    expect(rotated.status).toBe(201);
    expect(rotated.headers.get("cache-control")).toBe("no-store");
    const body = (await rotated.json()) as { alert_signing_secret: string; previous_valid_until: string | null };
    expect(body.alert_signing_secret).toMatch(/^whsec_/);
    expect(Date.parse(body.previous_valid_until ?? "")).toBeGreaterThan(Date.now());

    const [opened] = await raiseAlert(merchant, sink);
    if (!opened) throw new Error("no notification");
    expect(opened.headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    expect(await signedWith(opened, body.alert_signing_secret)).toBe(true);
    expect(await signedWith(opened, secret ?? "")).toBe(true);
    expect(await signedWith(opened, merchant.fulfillment.signing_secret)).toBe(false);

    // No overlap: the previous secret signs nothing more.
    const again = (await (await rotate(merchant.merchant.id, { overlap_hours: 0 })).json()) as { alert_signing_secret: string };
    await refuseKey(merchant.merchant.id, false);
    await checkUntil(merchant.api_key, (alerts) => expect(only(alerts, "smart_router_key_refused")).toMatchObject([{ state: "resolved" }]));
    const resolved = (await sinkRequests(sink))[1];
    if (!resolved) throw new Error("no resolution notification");
    expect(resolved.headers["webhook-signature"]?.split(" ")).toHaveLength(1);
    expect(await signedWith(resolved, again.alert_signing_secret)).toBe(true);
    expect(await signedWith(resolved, body.alert_signing_secret)).toBe(false);
  });
});

describe("alert signing secret: a merchant whose alert URL predates it", () => {
  it("gets no notification signed with another secret; a rotation issues its first secret and the held notification goes out", async () => {
    const merchant = await createMerchant();
    const sink = uniqueId("alert-legacy");
    await setAlertUrl(merchant.merchant.id, sinkUrl(sink));
    // As 0015 leaves a merchant whose URL was set before: no alert secret.
    await shardedDb
      .prepare("UPDATE merchants SET alert_secret_ciphertext = NULL, alert_secret_key_id = NULL WHERE id = ?")
      .bind(merchant.merchant.id)
      .run();
    const shown = (await (await call(`/admin/merchants/${merchant.merchant.id}`, { headers: ADMIN })).json()) as {
      merchant: { alerts: { signing_secret_set: boolean } };
    };
    expect(shown.merchant.alerts.signing_secret_set).toBe(false);

    // Every run at one instant: the held notification is tried once, then waits (tests run the schedule ×0.00002).
    const start = Date.now();
    expect(await raiseAlert(merchant, sink, start)).toEqual([]);
    const held = await shardedDb
      .prepare("SELECT notification_status AS status, notification_error AS error FROM alerts WHERE merchant_id = ?")
      .bind(merchant.merchant.id)
      .first<{ status: string; error: string }>();
    expect(held).toEqual({ status: "pending", error: NO_ALERT_SECRET });

    const rotated = await rotate(merchant.merchant.id);
    expect(rotated.status).toBe(201);
    const body = (await rotated.json()) as { alert_signing_secret: string; previous_valid_until: string | null };
    expect(body.previous_valid_until).toBeNull();
    // Due again after the schedule's first wait (1 s in tests), well within its horizon (about 1.7 s).
    await checkAlerts(start + 1_100);
    const [sent] = await sinkRequests(sink);
    if (!sent) throw new Error("the held notification was not sent");
    expect(await signedWith(sent, body.alert_signing_secret)).toBe(true);
    expect(await signedWith(sent, merchant.fulfillment.signing_secret)).toBe(false);
  });
});

describe("alert signing secret: errors and security", () => {
  it("409 for a merchant without an alert URL, 404 for an unknown merchant, 400 for a bad overlap, 401 without the admin token", async () => {
    const merchant = await createMerchant();
    const noUrl = await rotate(merchant.merchant.id);
    expect(noUrl.status).toBe(409);
    const error = (await noUrl.json()) as { error: { code: string; message: string; request_id: string } };
    expect(error.error.code).toBe("conflict");
    expect(error.error.message).toContain("alert URL");
    expect(await secretColumns(merchant.merchant.id)).toEqual({ c: null, k: null });
    expect((await rotate("no-such-merchant")).status).toBe(404);
    await setAlertUrl(merchant.merchant.id, "https://alerts.example.com/x");
    expect((await rotate(merchant.merchant.id, { overlap_hours: -1 })).status).toBe(400);
    expect((await rotate(merchant.merchant.id, undefined, {})).status).toBe(401);
    expect((await rotate(merchant.merchant.id, undefined, { authorization: "Bearer wrong" })).status).toBe(401);
  });

  it("is stored sealed, bound to its merchant and purpose, and audited without the secret", async () => {
    const merchant = await createMerchant();
    const { secret } = await setAlertUrl(merchant.merchant.id, "https://alerts.example.com/sealed");
    const rotated = (await (await rotate(merchant.merchant.id)).json()) as { alert_signing_secret: string };
    const row = await secretColumns(merchant.merchant.id);
    expect(row?.c).not.toContain(rotated.alert_signing_secret.slice(6, 20));
    const config = appConfig(env);
    const sealed = { ciphertext: row?.c ?? "", keyId: row?.k ?? "" };
    expect(await openSecret(config, sealed, secretContext.alert(merchant.merchant.id))).toBe(rotated.alert_signing_secret);
    // Not the fulfilment secret's purpose: the ciphertext does not open as one.
    await expect(openSecret(config, sealed, secretContext.fulfillment(merchant.merchant.id))).rejects.toThrow();
    const audit = await (await call("/admin/audit", { headers: ADMIN })).text();
    expect(audit).toContain(`"action":"alert_secret.rotate","target":"merchant:${merchant.merchant.id}"`);
    expect(audit).not.toContain(rotated.alert_signing_secret);
    expect(audit).not.toContain(secret ?? "?");
  });

  it("is re-sealed under the current SECRETS_KEY by the re-seal job", async () => {
    // "0…" sorts before every other test's merchant: the job's page starts at the cursor "0".
    const { merchant } = await createMerchant({ id: `0${uniqueId("als")}` });
    await setAlertUrl(merchant.id, "https://alerts.example.com/reseal");
    const shard = (await shardIndexOf(merchant.id)) ?? 0;
    const d1 = SHARDS[shard] ?? env.DB;
    const config = appConfig(env);
    const previous = { ...config, SECRETS_KEY: config.SECRETS_KEY_PREVIOUS ?? "" };
    const old = await sealSecret(previous, "whsec_c2VhbGVkIGJlZm9yZQ==", secretContext.alert(merchant.id));
    await d1
      .prepare("UPDATE merchants SET alert_secret_ciphertext = ?, alert_secret_key_id = ? WHERE id = ?")
      .bind(old.ciphertext, old.keyId, merchant.id)
      .run();
    const jobId = `rsl_test_${crypto.randomUUID().replaceAll("-", "")}`;
    await d1.prepare("INSERT INTO reseal_jobs (id, status, total, cursor) VALUES (?, 'running', 50, '0')").bind(jobId).run();
    const queue = { send: async () => {} } as unknown as Queue;
    await resealPage({ db: openDatabase(d1), config, queue, message: { v: 1, kind: "reseal", job_id: jobId, shard } });
    const row = await secretColumns(merchant.id);
    expect(row?.k).not.toBe(old.keyId);
    const withoutPrevious = { ...config, SECRETS_KEY_PREVIOUS: undefined };
    expect(await openSecret(withoutPrevious, { ciphertext: row?.c ?? "", keyId: row?.k ?? "" }, secretContext.alert(merchant.id))).toBe(
      "whsec_c2VhbGVkIGJlZm9yZQ==",
    );
    await d1.prepare("DELETE FROM reseal_jobs WHERE id = ?").bind(jobId).run();
  });
});
