import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { appConfig } from "../../../src/env";
import { secretContext } from "../../../src/merchants/merchants";
import { openSecret, sealSecret } from "../../../src/security/vault";
import { ADMIN, call, createMerchant } from "../../support/fixtures";
import { eventually, openShop, SANDBOX } from "../../support/sandbox";
import { shardedDb } from "../../support/shards";

interface SinkRequest {
  headers: Record<string, string>;
  body: string;
}

/** Standard Webhooks verification as a merchant would write it: any one `v1,` signature that matches is enough. */
async function signedWith(secret: string, request: SinkRequest): Promise<boolean> {
  const raw = Uint8Array.from(atob(secret.replace(/^whsec_/, "")), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
  const signed = new TextEncoder().encode(`${request.headers["webhook-id"]}.${request.headers["webhook-timestamp"]}.${request.body}`);
  for (const signature of (request.headers["webhook-signature"] ?? "").split(" ")) {
    const [version, value] = signature.split(",");
    if (
      version === "v1" &&
      value &&
      (await crypto.subtle.verify(
        "HMAC",
        key,
        Uint8Array.from(atob(value), (c) => c.charCodeAt(0)),
        signed,
      ))
    )
      return true;
  }
  return false;
}

const sink = async (projectId: string) =>
  ((await (await fetch(`${SANDBOX}/_sandbox/sink/${projectId}`)).json()) as { requests: SinkRequest[] }).requests;

describe("fulfilment signing secret rotation", () => {
  it("signs with both secrets during the overlap, with the new one only after it; the new secret is shown once", async () => {
    const shop = await openShop({ fulfillment: true, unlimited: true });
    const merchantId = shop.merchant.merchant.id;
    const old = shop.merchant.fulfillment.signing_secret;
    const rotated = await call(`/admin/merchants/${merchantId}/fulfillment-secret`, {
      method: "POST",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify({ overlap_hours: 2 }),
    });
    expect(rotated.status).toBe(201);
    expect(rotated.headers.get("cache-control")).toBe("no-store");
    const { fulfillment } = (await rotated.json()) as { fulfillment: { signing_secret: string; previous_valid_until: string } };
    expect(fulfillment.signing_secret).toMatch(/^whsec_/);
    expect(fulfillment.signing_secret).not.toBe(old);
    expect(Date.parse(fulfillment.previous_valid_until) - Date.now()).toBeGreaterThan(3_500_000);

    await shop.pay({ card: "4242424242424242", amount: "3.00", currency: "EUR" });
    await shop.relay({ rounds: 5 });
    const [during] = await eventually(async () => {
      const requests = await sink(shop.projectId);
      expect(requests).toHaveLength(1);
      return requests;
    });
    if (!during) throw new Error("no notification");
    expect(during.headers["webhook-signature"]?.split(" ")).toHaveLength(2);
    expect(await signedWith(old, during)).toBe(true);
    expect(await signedWith(fulfillment.signing_secret, during)).toBe(true);

    // The overlap is over: only the new secret signs.
    await shardedDb
      .prepare("UPDATE merchants SET fulfillment_secret_previous_valid_until = ? WHERE id = ?")
      .bind("2000-01-01T00:00:00.000Z", merchantId)
      .run();
    await shop.pay({ card: "4242424242424242", amount: "4.00", currency: "EUR" });
    await shop.relay({ rounds: 5 });
    const after = await eventually(async () => {
      const requests = await sink(shop.projectId);
      expect(requests).toHaveLength(2);
      return requests[1];
    });
    if (!after) throw new Error("no notification");
    expect(after.headers["webhook-signature"]?.split(" ")).toHaveLength(1);
    expect(await signedWith(fulfillment.signing_secret, after)).toBe(true);
    expect(await signedWith(old, after)).toBe(false);
    const shown = await (await call(`/admin/merchants/${merchantId}`, { headers: ADMIN })).text();
    expect(shown).not.toContain(fulfillment.signing_secret.slice(6));
  });

  it("404 for an unknown merchant, 400 for a bad overlap, 401 without the admin token", async () => {
    const post = (id: string, body: unknown, headers: Record<string, string> = ADMIN) =>
      call(`/admin/merchants/${id}/fulfillment-secret`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    expect((await post("no-such-merchant", {})).status).toBe(404);
    const { merchant } = await createMerchant();
    expect((await post(merchant.id, { overlap_hours: -1 })).status).toBe(400);
    expect((await post(merchant.id, {}, {})).status).toBe(401);
  });
});

describe("SECRETS_KEY rotation: the re-seal job", () => {
  it("re-seals every secret sealed by the previous key under the current one, with progress, resumable by its cursor", async () => {
    const { merchant } = await createMerchant();
    const config = appConfig(env);
    const previous = { ...config, SECRETS_KEY: config.SECRETS_KEY_PREVIOUS ?? "" };
    // This merchant's Smart Router key was sealed before the rotation, under what is now SECRETS_KEY_PREVIOUS.
    const sealedBefore = await sealSecret(previous, "sk_sealed_before_rotation", secretContext.smartRouter(merchant.id));
    await shardedDb
      .prepare("UPDATE merchants SET smart_router_secret_ciphertext = ?, smart_router_secret_key_id = ? WHERE id = ?")
      .bind(sealedBefore.ciphertext, sealedBefore.keyId, merchant.id)
      .run();

    const started = await call("/admin/reseal", { method: "POST", headers: ADMIN });
    expect(started.status).toBe(202);
    const { job } = (await started.json()) as { job: { id: string; status: string; total: number; secrets_under_old_keys: number } };
    expect(job.secrets_under_old_keys).toBeGreaterThanOrEqual(1);
    const done = await eventually(
      async () => {
        const body = (await (await call(`/admin/reseal/${job.id}`, { headers: ADMIN })).json()) as {
          job: { status: string; done: number; total: number; secrets_under_old_keys: number };
        };
        expect(body.job.status).toBe("completed");
        return body.job;
      },
      { timeoutMs: 20_000 },
    );
    expect(done.done).toBeGreaterThanOrEqual(done.total);
    expect(done.secrets_under_old_keys).toBe(0);
    const row = await shardedDb
      .prepare("SELECT smart_router_secret_ciphertext AS c, smart_router_secret_key_id AS k FROM merchants WHERE id = ?")
      .bind(merchant.id)
      .first<{ c: string; k: string }>();
    expect(row?.k).not.toBe(sealedBefore.keyId);
    // Now the current key alone opens it: SECRETS_KEY_PREVIOUS can go.
    const withoutPrevious = { ...config, SECRETS_KEY_PREVIOUS: undefined };
    expect(
      await openSecret(withoutPrevious, { ciphertext: row?.c ?? "", keyId: row?.k ?? "" }, secretContext.smartRouter(merchant.id)),
    ).toBe("sk_sealed_before_rotation");
    expect((await call("/admin/reseal/rsl_unknown", { headers: ADMIN })).status).toBe(404);
    const audit = (await (await call("/admin/audit", { headers: ADMIN })).json()) as { entries: { action: string; target: string }[] };
    expect(audit.entries.some((entry) => entry.action === "secrets.reseal" && entry.target === `reseal:${job.id}`)).toBe(true);
  });
});
