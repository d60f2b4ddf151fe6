import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { appConfig } from "../../../src/env";
import { deliverFulfillment } from "../../../src/fulfillment/deliver";
import { createMerchant } from "../../support/fixtures";
import { shardedDb } from "../../support/shards";
import { dbOfMerchant, seedFulfillment, seedTransaction } from "../../support/status-api";

const config = appConfig(env);
const productionConfig = appConfig({ ...env, ALLOW_LOOPBACK_FULFILLMENT_URLS: undefined });

/** A merchant with one captured transaction whose notification is pending. */
async function pendingNotification(fulfillmentUrl = "https://shop.example/hook") {
  const merchant = await createMerchant({ fulfillment_url: fulfillmentUrl });
  const transaction = await seedTransaction(merchant.merchant.id, { status: "completed", capturedAmount: "10.50" });
  const target = { merchantId: merchant.merchant.id, transactionId: transaction.id };
  await seedFulfillment(target);
  return target;
}

const row = (target: { merchantId: string; transactionId: string }) =>
  shardedDb
    .prepare("SELECT status, attempts, last_error FROM fulfillments WHERE merchant_id = ? AND transaction_id = ?")
    .bind(target.merchantId, target.transactionId)
    .first<{ status: string; attempts: number; last_error: string | null }>();

/** A fetcher answering `response`, recording what it was asked. */
function answering(response: () => Response) {
  const calls: { url: string; init: RequestInit | undefined }[] = [];
  const fetcher = (async (input: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(input), init });
    return response();
  }) as typeof fetch;
  return { fetcher, calls };
}

describe("fulfilment: outbound safety", () => {
  it("does not follow a redirect: a 3xx is a failed attempt, asked with redirect: manual", async () => {
    const target = await pendingNotification();
    const { fetcher, calls } = answering(
      () => new Response(null, { status: 302, headers: { location: "http://169.254.169.254/latest/meta-data" } }),
    );
    const outcome = await deliverFulfillment({ db: await dbOfMerchant(target.merchantId), config, ...target, fetcher });
    expect(outcome).toEqual({ kind: "failed", error: "merchant answered 302 (redirects are not followed)" });
    expect(calls).toHaveLength(1);
    expect(calls[0]?.url).toBe("https://shop.example/hook");
    expect(calls[0]?.init?.redirect).toBe("manual");
    expect(await row(target)).toMatchObject({ status: "pending", last_error: "merchant answered 302 (redirects are not followed)" });
  });

  it("records the status of a refusal, never the answer's body", async () => {
    const target = await pendingNotification();
    const secret = "root:x:0:0 internal stack trace at /srv/app.js";
    const { fetcher } = answering(() => new Response(secret, { status: 500 }));
    const outcome = await deliverFulfillment({ db: await dbOfMerchant(target.merchantId), config, ...target, fetcher });
    expect(outcome).toEqual({ kind: "failed", error: "merchant answered 500" });
    const stored = await row(target);
    expect(stored?.last_error).toBe("merchant answered 500");
    expect(JSON.stringify(stored)).not.toContain("root:x");
  });

  it("never calls a URL stored before the rules, or a loopback one where loopback is not allowed", async () => {
    for (const url of [
      "http://169.254.169.254/latest/meta-data",
      "https://0x7f000001/hook",
      "https://user:pass@shop.example/hook",
      "http://127.0.0.1:9/hook",
    ]) {
      const target = await pendingNotification();
      // As a row written before these rules could hold it.
      await shardedDb.prepare("UPDATE merchants SET fulfillment_url = ? WHERE id = ?").bind(url, target.merchantId).run();
      const { fetcher, calls } = answering(() => new Response("ok"));
      const outcome = await deliverFulfillment({ db: await dbOfMerchant(target.merchantId), config: productionConfig, ...target, fetcher });
      expect(outcome.kind, url).toBe("failed");
      expect(calls, url).toHaveLength(0);
      expect((await row(target))?.last_error).toMatch(/^fulfillment_url is not allowed/);
    }
  });

  it("calls a loopback URL where ALLOW_LOOPBACK_FULFILLMENT_URLS is true, and a public https one anywhere", async () => {
    const loopback = await pendingNotification("http://127.0.0.1:8788/_sandbox/sink/x");
    const local = answering(() => new Response("ok"));
    expect(await deliverFulfillment({ db: await dbOfMerchant(loopback.merchantId), config, ...loopback, fetcher: local.fetcher })).toEqual({
      kind: "delivered",
    });
    expect(local.calls).toHaveLength(1);

    const publicUrl = await pendingNotification();
    const remote = answering(() => new Response(null, { status: 204 }));
    expect(
      await deliverFulfillment({
        db: await dbOfMerchant(publicUrl.merchantId),
        config: productionConfig,
        ...publicUrl,
        fetcher: remote.fetcher,
      }),
    ).toEqual({
      kind: "delivered",
    });
    expect((await row(publicUrl))?.status).toBe("delivered");
  });
});
