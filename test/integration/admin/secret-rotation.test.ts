import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { resealPage, secretsUnderOldKeys } from "../../../src/admin/reseal";
import { openDatabase } from "../../../src/db/client";
import { type EndpointRow, endpointSecretContext, endpointSecretsOf } from "../../../src/endpoints/secrets";
import { appConfig } from "../../../src/env";
import { secretContext } from "../../../src/merchants/merchants";
import { currentKeyId, openSecret, sealSecret } from "../../../src/security/vault";
import { ADMIN, call, createMerchant, uniqueId } from "../../support/fixtures";
import { eventually, openShop, SANDBOX } from "../../support/sandbox";
import { SHARDS, shardedDb, shardIndexOf } from "../../support/shards";
import { apiJson, createEndpoint } from "../endpoints/support";

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

/**
 * A D1 binding whose batches wait until `parties` callers have reached theirs, so every caller has read before any
 * writes; `meanwhile` runs then, before the batches, as another worker's write would.
 */
function batchesMeetFirst(d1: D1Database, parties: number, meanwhile: () => Promise<unknown> = async () => {}): D1Database {
  let arrived = 0;
  let release = () => {};
  const allArrived = new Promise<void>((resolve) => {
    release = resolve;
  });
  return new Proxy(d1, {
    get(target, key) {
      if (key === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          arrived += 1;
          if (arrived === parties) await meanwhile().then(release);
          await allArrived;
          return target.batch(statements);
        };
      }
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
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

  it("two rotations at once: one is a 201, the other a 409 `conflict`, and the secret shown is the one that signs", async () => {
    const created = await createMerchant();
    const merchantId = created.merchant.id;
    const rotate = () => call(`/admin/merchants/${merchantId}/fulfillment-secret`, { method: "POST", headers: ADMIN });
    const responses = await Promise.all([rotate(), rotate()]);
    // Both read the current secret before either writes: the compare-and-set lets the first write in and refuses the other.
    expect(responses.map((response) => response.status).sort()).toEqual([201, 409]);
    const [won] = await Promise.all(
      responses
        .filter((r) => r.status === 201)
        .map(async (r) => ((await r.json()) as { fulfillment: { signing_secret: string } }).fulfillment),
    );
    for (const response of responses.filter((r) => r.status === 409)) {
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("conflict");
    }
    const row = await shardedDb.prepare("SELECT * FROM merchants WHERE id = ?").bind(merchantId).first<Record<string, string>>();
    const config = appConfig(env);
    const context = secretContext.fulfillment(merchantId);
    const open = (ciphertext = "", keyId = "") => openSecret(config, { ciphertext, keyId }, context);
    // The winner's secret is current; the one before both is the previous (the loser pushed nothing out).
    expect(await open(row?.fulfillment_secret_ciphertext, row?.fulfillment_secret_key_id)).toBe(won?.signing_secret);
    expect(await open(row?.fulfillment_secret_previous_ciphertext, row?.fulfillment_secret_previous_key_id)).toBe(
      created.fulfillment.signing_secret,
    );
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

  /** A merchant whose Smart Router key is sealed under the previous SECRETS_KEY, first on its shard after the cursor "0". */
  async function merchantUnderPreviousKey(secret: string) {
    // "0…" sorts before every other test's merchant.
    const created = await createMerchant({ id: `0${uniqueId("rsl")}` });
    const { merchant } = created;
    const shard = (await shardIndexOf(merchant.id)) ?? 0;
    const d1 = SHARDS[shard] ?? env.DB;
    const config = appConfig(env);
    const sealed = await sealSecret(
      { ...config, SECRETS_KEY: config.SECRETS_KEY_PREVIOUS ?? "" },
      secret,
      secretContext.smartRouter(merchant.id),
    );
    await d1
      .prepare("UPDATE merchants SET smart_router_secret_ciphertext = ?, smart_router_secret_key_id = ? WHERE id = ?")
      .bind(sealed.ciphertext, sealed.keyId, merchant.id)
      .run();
    return { merchantId: merchant.id, created, shard, d1, config };
  }

  /** A running re-seal job part on `d1`, its cursor before every merchant made by `merchantUnderPreviousKey`. */
  async function runningJob(d1: D1Database): Promise<string> {
    const jobId = `rsl_test_${crypto.randomUUID().replaceAll("-", "")}`;
    await d1.prepare("INSERT INTO reseal_jobs (id, status, total, cursor) VALUES (?, 'running', 50, '0')").bind(jobId).run();
    return jobId;
  }

  const jobOf = (d1: D1Database, jobId: string) =>
    d1.prepare("SELECT status, done FROM reseal_jobs WHERE id = ?").bind(jobId).first<{ status: string; done: number }>();

  it("a page run twice at once (a duplicated message) re-seals and counts it once, and sends one next page", async () => {
    const { merchantId, shard, d1, config } = await merchantUnderPreviousKey("sk_sealed_twice");
    // 49 copies right after it (under the current key, so the page skips them): the page after "0" is full whatever else exists.
    const copies = Array.from({ length: 49 }, (_, n) => `${merchantId}-${String(n).padStart(2, "0")}`);
    const copy = d1.prepare(
      "INSERT INTO merchants (id, name, smart_router_project_id, smart_router_secret_ciphertext, smart_router_secret_key_id, " +
        "webhook_username, webhook_password_hash, fulfillment_secret_ciphertext, fulfillment_secret_key_id) SELECT ?, name, ?, " +
        "fulfillment_secret_ciphertext, fulfillment_secret_key_id, webhook_username, webhook_password_hash, fulfillment_secret_ciphertext, " +
        "fulfillment_secret_key_id FROM merchants WHERE id = ?",
    );
    await d1.batch(copies.map((id) => copy.bind(id, `test-proj_${id}`, merchantId)));
    const jobId = await runningJob(d1);
    try {
      const sent: unknown[] = [];
      const queue = { send: async (body: unknown) => void sent.push(body) } as unknown as Queue;
      const db = openDatabase(batchesMeetFirst(d1, 2));
      const message = { v: 1, kind: "reseal", job_id: jobId, shard } as const;
      await Promise.all([resealPage({ db, config, queue, message }), resealPage({ db, config, queue, message })]);

      expect(await jobOf(d1, jobId)).toEqual({ status: "running", done: 50 });
      // The run that lost the job's compare-and-set sends nothing: one chain of pages goes on, not two.
      expect(sent).toEqual([message]);
      const row = await d1
        .prepare("SELECT smart_router_secret_ciphertext AS c, smart_router_secret_key_id AS k FROM merchants WHERE id = ?")
        .bind(merchantId)
        .first<{ c: string; k: string }>();
      expect(row?.k).toBe(await currentKeyId(config));
      const opened = await openSecret(config, { ciphertext: row?.c ?? "", keyId: row?.k ?? "" }, secretContext.smartRouter(merchantId));
      expect(opened).toBe("sk_sealed_twice");
    } finally {
      await d1.batch([
        d1.prepare("DELETE FROM reseal_jobs WHERE id = ?").bind(jobId),
        ...copies.map((id) => d1.prepare("DELETE FROM merchants WHERE id = ?").bind(id)),
      ]);
    }
  });

  it("re-seals endpoint signing secrets too, the current one and the one a rotation replaced, so the old key can go", async () => {
    const { merchantId, created, shard, d1, config } = await merchantUnderPreviousKey("sk_with_endpoint");
    const { endpoint, signing_secret: first } = await createEndpoint(created, `reseal-${merchantId}`);
    const rotated = await apiJson<{ signing_secret: string }>(created, `/v1/endpoints/${endpoint.id}/secret`, {
      body: { overlap_hours: 2 },
    });
    // Both were sealed before the SECRETS_KEY rotation, under what is now SECRETS_KEY_PREVIOUS.
    const previousKey = { ...config, SECRETS_KEY: config.SECRETS_KEY_PREVIOUS ?? "" };
    const context = endpointSecretContext(merchantId, endpoint.id);
    const current = await sealSecret(previousKey, rotated.signing_secret, context);
    const replaced = await sealSecret(previousKey, first, context);
    await d1
      .prepare(
        "UPDATE endpoints SET secret_ciphertext = ?, secret_key_id = ?, previous_secret_ciphertext = ?, previous_secret_key_id = ? WHERE id = ?",
      )
      .bind(current.ciphertext, current.keyId, replaced.ciphertext, replaced.keyId, endpoint.id)
      .run();
    const endpointRow = async () => {
      const row = await openDatabase(d1).query.endpoints.findFirst({ where: (e, { eq }) => eq(e.id, endpoint.id) });
      if (!row) throw new Error("endpoint row gone");
      return row satisfies EndpointRow;
    };
    const withoutPrevious = { ...config, SECRETS_KEY_PREVIOUS: undefined };
    await expect(endpointSecretsOf(withoutPrevious, await endpointRow(), Date.now())).rejects.toThrow();
    expect(await secretsUnderOldKeys({ env, config })).toBeGreaterThanOrEqual(1);

    const jobId = await runningJob(d1);
    const queue = { send: async () => {} } as unknown as Queue;
    await resealPage({ db: openDatabase(d1), config, queue, message: { v: 1, kind: "reseal", job_id: jobId, shard } });
    const row = await endpointRow();
    const key = await currentKeyId(config);
    expect([row.secretKeyId, row.previousSecretKeyId]).toEqual([key, key]);
    // The current key alone opens both: the messages of the overlap still carry both signatures.
    expect(await endpointSecretsOf(withoutPrevious, row, Date.now())).toEqual([rotated.signing_secret, first]);
    expect(await secretsUnderOldKeys({ env, config })).toBe(0);
    await d1.prepare("DELETE FROM reseal_jobs WHERE id = ?").bind(jobId).run();
  });

  it("a job failed while a page ran stays failed: the page counts nothing and sends nothing", async () => {
    const { shard, d1, config } = await merchantUnderPreviousKey("sk_sealed_failed");
    const jobId = await runningJob(d1);
    const sent: unknown[] = [];
    const queue = { send: async (body: unknown) => void sent.push(body) } as unknown as Queue;
    const failMeanwhile = () =>
      d1.prepare("UPDATE reseal_jobs SET status = 'failed', error = 'another page failed' WHERE id = ?").bind(jobId).run();
    const db = openDatabase(batchesMeetFirst(d1, 1, failMeanwhile));
    await resealPage({ db, config, queue, message: { v: 1, kind: "reseal", job_id: jobId, shard } });
    expect(await jobOf(d1, jobId)).toEqual({ status: "failed", done: 0 });
    expect(sent).toEqual([]);
    await d1.prepare("DELETE FROM reseal_jobs WHERE id = ?").bind(jobId).run();
  });
});
