import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { appConfig } from "../../../src/env";
import { secretContext } from "../../../src/merchants/merchants";
import { hashCredential } from "../../../src/security/credentials";
import { openSecret } from "../../../src/security/vault";
import { ADMIN, call, createMerchant } from "../../support/fixtures";
import { shardedDb } from "../../support/shards";
import { getWithKey } from "../../support/status-api";

const HIDDEN = "admin_audit_hidden_by_test";

/** Runs `body` while the audit table of DB is out of the way, so every audit write fails; puts it back whatever happens. */
async function withAuditFailing<T>(body: () => Promise<T>): Promise<T> {
  await env.DB.prepare(`ALTER TABLE admin_audit RENAME TO ${HIDDEN}`).run();
  try {
    return await body();
  } finally {
    await env.DB.prepare(`ALTER TABLE ${HIDDEN} RENAME TO admin_audit`).run();
  }
}

const post = (path: string) => call(path, { method: "POST", headers: ADMIN });

/** The merchant's stored secrets, as the rotations below change them. */
const storedSecrets = (merchantId: string) =>
  shardedDb
    .prepare(
      "SELECT webhook_password_hash AS h, fulfillment_secret_ciphertext AS c, fulfillment_secret_key_id AS k FROM merchants WHERE id = ?",
    )
    .bind(merchantId)
    .first<{ h: string; c: string; k: string }>();

afterEach(() => {
  vi.restoreAllMocks();
});

describe("admin API: a failing audit write never hides a secret shown once", () => {
  it("registration, API key issuance and both rotations answer 201 with the secret, the change in effect, and log the loss", async () => {
    const errors = vi.spyOn(console, "error");
    const { created, issued, webhook, signing } = await withAuditFailing(async () => {
      // createMerchant insists on a 201 with the body.
      const created = await createMerchant();
      const id = created.merchant.id;
      const answers = [
        await post(`/admin/merchants/${id}/api-keys`),
        await post(`/admin/merchants/${id}/webhook-credential`),
        await post(`/admin/merchants/${id}/fulfillment-secret`),
      ];
      expect(answers.map((answer) => answer.status)).toEqual([201, 201, 201]);
      const [issued, webhook, signing] = (await Promise.all(answers.map((answer) => answer.json()))) as [
        { api_key: { key: string } },
        { webhook: { password: string } },
        { fulfillment: { signing_secret: string } },
      ];
      return { created, issued, webhook, signing };
    });
    const id = created.merchant.id;

    // Every change is in effect: both API keys work, the webhook password and the signing secret are the ones shown.
    for (const key of [created.api_key, issued.api_key.key]) expect((await getWithKey("/v1/transactions", key)).status).toBe(200);
    const stored = await storedSecrets(id);
    expect(stored?.h).toBe(await hashCredential(webhook.webhook.password));
    const current = await openSecret(
      appConfig(env),
      { ciphertext: stored?.c ?? "", keyId: stored?.k ?? "" },
      secretContext.fulfillment(id),
    );
    expect(current).toBe(signing.fulfillment.signing_secret);

    // Nothing reached the audit, and each loss was logged at error, naming the action and never a secret.
    const audited = await shardedDb.prepare("SELECT action FROM admin_audit WHERE target LIKE ?").bind(`merchant:${id}%`).all();
    expect(audited.results).toEqual([]);
    const lost = errors.mock.calls.map(([line]) => String(line)).filter((line) => line.includes('"admin.audit_failed"'));
    const actions = lost.flatMap((line) => (JSON.parse(line) as { actions: { action: string; target: string }[] }).actions);
    expect(actions.filter((entry) => entry.target.startsWith(`merchant:${id}`)).map((entry) => entry.action)).toEqual([
      "merchant.create",
      "api_key.create",
      "webhook_credential.rotate",
      "signing_secret.rotate",
    ]);
    for (const secret of [created.api_key, issued.api_key.key, webhook.webhook.password, signing.fulfillment.signing_secret]) {
      expect(lost.join("\n")).not.toContain(secret);
    }
  });

  it("audits again once the table is back", async () => {
    const created = await createMerchant();
    const audited = await shardedDb
      .prepare("SELECT action FROM admin_audit WHERE target = ?")
      .bind(`merchant:${created.merchant.id}`)
      .all<{ action: string }>();
    expect(audited.results.map((row) => row.action)).toEqual(["merchant.create"]);
  });
});
