// `npm run test:browser`: the operations console and /docs in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) against the local stack of scripts/stack.mjs: the Smart Router emulator, wrangler dev and a merchant.
// Screenshots go to test/browser/screenshots/ (git-ignored).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import { http, openShop, ROOT, sleep, startStack, stopStack } from "../../scripts/stack.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const SCREENSHOTS = join(ROOT, "test", "browser", "screenshots");
/** How long one wait for the stack (a payment to settle, a page to show a figure) may take before the test fails. */
const SETTLE_MS = 30_000;

let stack;
let shop;
let browser;
let userDataDir;
let payment;
let stuck;
/** Every request the pages made, and every console error and page error, per test. */
let requests = [];
let problems = [];

/** Polls `check` every 250 ms until it answers something truthy; fails after `timeoutMs`. */
async function eventually(what, check, timeoutMs = SETTLE_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

const merchantApi = (path, init = {}, apiKey = shop.creds.api_key) =>
  http(`${stack.workerUrl}${path}`, { ...init, headers: { authorization: `Bearer ${apiKey}`, ...init.headers } });

/** A payment as the status API has it, once `ready` says it has settled. */
async function settled(id, ready) {
  return eventually(`${id} settled`, async () => {
    const answer = await merchantApi(`/v1/transactions/${id}`);
    return answer.status === 200 && ready(answer.body.transaction) ? answer.body.transaction : null;
  });
}

async function newPage() {
  const page = await browser.newPage();
  page.on("request", (request) => requests.push(request.url()));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(error.message));
  return page;
}

async function screenshot(page, name) {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

async function signInWithKey(page, key) {
  await page.goto(`${stack.workerUrl}/console`);
  await page.getByRole("tab", { name: "Merchant API key" }).click();
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** Only the stack's own origin (and data: URLs) was asked for anything; no CSP refusal, no script error. */
function assertSameOriginAndClean() {
  const origin = new URL(stack.workerUrl).origin;
  const foreign = requests.filter((url) => !url.startsWith("data:") && new URL(url).origin !== origin);
  assert.deepEqual(foreign, [], "requests to another origin");
  // A 404 from an endpoint another part of the service has not shipped is the console's "not available", not a fault.
  const faults = problems.filter((text) => !/status of 404/.test(text));
  assert.deepEqual(faults, [], "console errors");
}

before(
  async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    stack = await startStack({
      name: "browser",
      port: 8790,
      sandboxPort: 8791,
      timeScale: 0.05,
      persistTo: "browser-state",
      frozen: true,
      // The test-only retry scale, a tenth of production: a failed fulfilment is retried after 1 s, then ~30 s (not 5 min).
      vars: { RETRY_SCHEDULE_SCALE: "0.1" },
    });
    const merchantId = `console-${Date.now().toString(36)}`;
    shop = await openShop(stack, { merchantId, fast: true });
    // An authorization left uncaptured for an hour raises `authorized_not_captured` (the default is 24 hours).
    await stack.admin(`/admin/merchants/${merchantId}`, { method: "PATCH", body: { alerts: { authorized_uncaptured_hours: 1 } } });

    const paid = await shop.pay({ amount: "42.00", currency: "EUR", card: "4242424242424242", name: "Console demo order" });
    const held = await shop.pay({ amount: "17.50", currency: "EUR", card: "4242424242424242", capture: "manual", name: "Left authorized" });
    payment = await settled(paid.id, (t) => t.status === "completed" && t.fulfillment.status === "delivered");
    stuck = await settled(held.id, (t) => t.status === "authorized");

    userDataDir = mkdtempSync(join(tmpdir(), "sre-console-chromium-"));
    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1280, height: 860 },
    });
  },
  { timeout: 180_000 },
);

after(async () => {
  await browser?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  await stopStack();
});

describe("the console in Chromium", { timeout: 300_000 }, () => {
  it("renders /docs from bundled assets, reading /v1/openapi.json", async () => {
    requests = [];
    problems = [];
    const page = await newPage();
    await page.goto(`${stack.workerUrl}/docs`);
    await page.locator(".opblock-summary-path", { hasText: "/v1/transactions/{id}" }).first().waitFor();
    assert.ok(requests.some((url) => url.endsWith("/v1/openapi.json")));
    await screenshot(page, "docs");
    assertSameOriginAndClean();
    await page.close();
  });

  it("signs in with a merchant API key, kept in sessionStorage only, and shows the pipeline", async () => {
    requests = [];
    problems = [];
    const page = await newPage();
    await signInWithKey(page, "sre_0000000000000000_not-a-key");
    await page.getByRole("alert").filter({ hasText: "was refused" }).waitFor();
    await screenshot(page, "sign-in-refused");
    problems = problems.filter((text) => !/status of 401/.test(text));

    await signInWithKey(page, shop.creds.api_key);
    await page.locator("[data-panel=pipeline]").waitFor();
    await page.locator('[data-figure="Applied"], [data-panel=pipeline] [data-state=unavailable]').first().waitFor();
    const storage = await page.evaluate(() => ({ session: sessionStorage.length, local: localStorage.length, url: location.href }));
    assert.equal(storage.session, 1);
    assert.equal(storage.local, 0);
    assert.ok(!storage.url.includes(shop.creds.api_key));
    assert.ok(
      requests.every((url) => !url.includes(shop.creds.api_key)),
      "the key never goes into a URL",
    );
    await screenshot(page, "pipeline");
    assertSameOriginAndClean();
    await page.close();
  });

  it("lists payments with filters and shows a demo payment's timeline", async () => {
    requests = [];
    problems = [];
    const page = await newPage();
    await signInWithKey(page, shop.creds.api_key);
    await page.getByRole("link", { name: "Payments" }).click();
    await page.locator(`[data-transaction="${payment.id}"]`).waitFor();
    await page.locator(`[data-transaction="${stuck.id}"]`).waitFor();

    await page.locator("#filter-status").selectOption("authorized");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.locator(`[data-transaction="${stuck.id}"]`).waitFor();
    assert.equal(await page.locator(`[data-transaction="${payment.id}"]`).count(), 0);
    await page.getByRole("button", { name: "Clear" }).click();
    await page.getByLabel("Payment type").fill(payment.payment_type ?? "card");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.locator(`[data-transaction="${payment.id}"]`).waitFor();

    await page.getByRole("link", { name: payment.id }).click();
    await page.locator("[data-panel=timeline]").waitFor();
    for (const kind of ["delivery", "fetch_back", "state_change", "fulfillment_attempt"]) {
      await page.locator(`.timeline-entry[data-kind="${kind}"]`).first().waitFor();
    }
    const states = await page.locator('.timeline-entry[data-kind="state_change"]').allInnerTexts();
    assert.ok(
      states.some((text) => text.includes("completed")),
      `a state change to completed: ${states.join(" | ")}`,
    );
    await screenshot(page, "timeline");
    assertSameOriginAndClean();
    await page.close();
  });

  it("finds a payment from the search box: by its own reference (a filtered list) or by its transaction id (its timeline)", async () => {
    requests = [];
    problems = [];
    const page = await newPage();
    await signInWithKey(page, shop.creds.api_key);
    await page.getByRole("link", { name: "Payments" }).click();
    await page.locator(`[data-transaction="${stuck.id}"]`).waitFor();
    const search = page.locator("#payment-search");

    // The payment's name: only it is listed, and the hash keeps the reference.
    await search.fill("Console demo order");
    await page.getByRole("button", { name: "Find" }).click();
    await page.locator('[data-reference="Console demo order"]').waitFor();
    await page.locator(`[data-transaction="${payment.id}"]`).waitFor();
    assert.equal(await page.locator(`[data-transaction="${stuck.id}"]`).count(), 0);
    assert.match(await page.evaluate(() => location.hash), /reference=Console\+demo\+order/);
    await screenshot(page, "payment-search");

    // Smart Router's invoice id finds it too; another case finds nothing (exact match).
    await search.fill(payment.invoice_id);
    await page.getByRole("button", { name: "Find" }).click();
    await page.locator(`[data-reference="${payment.invoice_id}"]`).waitFor();
    await page.locator(`[data-transaction="${payment.id}"]`).waitFor();
    await search.fill("console demo order");
    await page.getByRole("button", { name: "Find" }).click();
    await page.getByText("No payment matches these filters.").waitFor();

    // A transaction id opens the payment's timeline.
    await search.fill(stuck.id);
    await page.getByRole("button", { name: "Find" }).click();
    await page.locator("[data-panel=timeline]").waitFor();
    assert.ok(
      requests.some((url) => url.includes("/v1/transactions?") && url.includes("reference=Console+demo+order")),
      "the reference went to the status API as a filter",
    );
    assertSameOriginAndClean();
    await page.close();
  });

  it("shows why a captured payment has not shipped, then its delivery once the merchant's endpoint answers again", async () => {
    requests = [];
    problems = [];
    const sink = `/_sandbox/sink/${shop.merchantId}`; // the merchant's fulfillment_url (openShop)
    await stack.sandbox(sink, { method: "PUT", body: { status: 500 } });
    try {
      const paid = await shop.pay({ amount: "23.00", currency: "EUR", card: "4242424242424242", name: "Not shipped yet" });
      // The first attempt and its retry 1 s later both get the 500; the next retry is ~30 s away.
      await eventually("two failed fulfilment attempts", async () => {
        const answer = await merchantApi(`/v1/transactions/${paid.id}/timeline`);
        const failed = answer.body.timeline?.filter((e) => e.kind === "fulfillment_attempt" && e.detail.http_status === 500);
        return failed?.length >= 2;
      });
      const page = await newPage();
      await signInWithKey(page, shop.creds.api_key);
      await page.getByRole("link", { name: "Payments" }).click();
      await page.getByRole("link", { name: paid.id }).click();
      const attempts = page.locator('.timeline-entry[data-kind="fulfillment_attempt"]');
      const failure = attempts.filter({ hasText: "the merchant answered 500" }).first();
      await failure.waitFor();
      assert.match(await failure.innerText(), /outcome\s+failed[\s\S]*http status\s+500/);
      const fulfilment = page.locator(".facts dt:text-is('Fulfilment') + dd");
      assert.doesNotMatch(await fulfilment.innerText(), /delivered/);
      await screenshot(page, "fulfilment-failing");

      await stack.sandbox(sink, { method: "PUT", body: { status: 200 } });
      await eventually(
        "the retry delivered",
        async () => (await merchantApi(`/v1/transactions/${paid.id}`)).body.transaction?.fulfillment.status === "delivered",
        60_000,
      );
      await page.reload();
      await attempts.filter({ hasText: "delivered (the merchant answered 200)" }).waitFor();
      assert.match(await fulfilment.innerText(), /^delivered/);
      await screenshot(page, "fulfilment-delivered");
      assertSameOriginAndClean();
      await page.close();
    } finally {
      await stack.sandbox(sink, { method: "PUT", body: { status: 200 } });
    }
  });

  it("shows a batch's progress", async () => {
    requests = [];
    problems = [];
    const created = await merchantApi("/v1/batches", { body: { kind: "refresh", transaction_ids: [payment.id, stuck.id] } });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const batchId = created.body.batch.id;
    const page = await newPage();
    await signInWithKey(page, shop.creds.api_key);
    await page.getByRole("link", { name: "Batches" }).click();
    const row = page.locator(`[data-batch="${batchId}"]`);
    await row.waitFor();
    await page.locator(`[data-batch="${batchId}"][data-status="completed"]`).waitFor({ timeout: SETTLE_MS });
    const counts = await row.locator(".batch-counts").innerText();
    assert.match(counts, /2\s+done/);
    assert.match(counts, /of\s+2/);
    assert.equal(await row.getByRole("progressbar").getAttribute("aria-valuenow"), "2");
    await screenshot(page, "batches");
    assertSameOriginAndClean();
    await page.close();
  });

  it("shows an endpoint's health, pauses and enables it, replays a range after its dry-run count, and a payment's messages", async () => {
    requests = [];
    problems = [];
    const sinkPath = `/_sandbox/sink/ep-${shop.merchantId}`;
    const created = await merchantApi("/v1/endpoints", {
      body: { url: `${stack.sandboxUrl}${sinkPath}`, events: ["*"], description: "order system" },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const endpointId = created.body.endpoint.id;
    const paid = await shop.pay({ amount: "31.00", currency: "EUR", card: "4242424242424242", name: "Pushed to an endpoint" });
    await settled(paid.id, (t) => t.status === "completed");
    // Every message of the payment delivered, the capture among them (the endpoint exists only since this test).
    const messages = await eventually("the payment's messages delivered", async () => {
      const answer = await merchantApi(`/v1/endpoints/${endpointId}/messages?limit=100`);
      const all = answer.body.messages ?? [];
      const done = all.length > 0 && all.every((m) => m.status === "delivered") && all.some((m) => m.type === "transaction.captured");
      return done ? all : null;
    });

    const page = await newPage();
    await signInWithKey(page, shop.creds.api_key);
    await page.getByRole("link", { name: "Endpoints" }).click();
    const row = page.locator(`[data-endpoint="${endpointId}"]`);
    await page.locator(`[data-endpoint="${endpointId}"][data-health="healthy"]`).waitFor();
    assert.match(await row.locator("[data-health-counts]").innerText(), new RegExp(`${messages.length}\\s+delivered`));

    await row.getByRole("button", { name: "Pause" }).click();
    await page.locator(`[data-endpoint="${endpointId}"][data-status="paused"]`).waitFor();
    assert.equal((await merchantApi(`/v1/endpoints/${endpointId}`)).body.endpoint.status, "paused");
    await screenshot(page, "endpoints-paused");
    await row.getByRole("button", { name: "Enable" }).click();
    await page.locator(`[data-endpoint="${endpointId}"][data-status="enabled"]`).waitFor();

    // The dry run's count first: every message the endpoint has (all were created within the form's default last day).
    await row.getByRole("button", { name: "Replay…" }).click();
    await row.getByRole("button", { name: "Count messages" }).click();
    const count = row.locator("[data-dry-run-total]");
    await count.waitFor();
    assert.equal(await count.getAttribute("data-dry-run-total"), String(messages.length));
    assert.equal((await stack.sandbox(sinkPath)).requests.length, messages.length, "a dry run sends nothing");
    await screenshot(page, "endpoints-dry-run");
    await row.getByRole("button", { name: `Replay ${messages.length} messages` }).click();
    const progress = row.locator("[data-replay][data-status=completed]");
    await progress.waitFor({ timeout: SETTLE_MS });
    assert.match(
      await progress.locator(".batch-counts").innerText(),
      new RegExp(`${messages.length}\\s+sent[\\s\\S]*of\\s+${messages.length}`),
    );
    // The same webhook-ids again, once each.
    const received = (await stack.sandbox(sinkPath)).requests.map((r) => r.headers["webhook-id"]);
    assert.deepEqual([...received].sort(), [...messages.map((m) => m.id), ...messages.map((m) => m.id)].sort());
    await screenshot(page, "endpoints-replayed");

    // The payment's page lists its messages to the endpoint, in the order they went out.
    await page.goto(`${stack.workerUrl}/console#/payments/${encodeURIComponent(paid.id)}`);
    const lane = page.locator(`[data-panel=timeline] [data-lane="${endpointId}"]`);
    await lane.locator('tr[data-type="transaction.captured"][data-status="delivered"]').waitFor();
    const ofPayment = messages.filter((m) => m.transaction_id === paid.id);
    assert.equal(await lane.locator("tr[data-message]").count(), ofPayment.length);
    const types = await lane.locator("tr[data-message]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-type")));
    assert.ok(types.includes("transaction.completed"), types.join(", "));
    assert.equal(types.indexOf("transaction.captured"), types.indexOf("transaction.completed") + 1, types.join(", "));
    await screenshot(page, "timeline-endpoint-messages");
    assertSameOriginAndClean();
    await page.close();
  });

  it("cancels a running batch from the Batches page", async () => {
    requests = [];
    problems = [];
    // A shop whose batch lane crawls (60 rpm, 1% of it, no webhooks sent): a sync of 101 payments reads its first page of
    // 100 at once, then waits many minutes at our pacer for the second, so the batch stays running.
    const slow = await openShop(stack, {
      merchantId: `cancel-${Date.now().toString(36)}`,
      settings: { rates: { sandbox: 60 }, chaos: { drop_rate: 1 } },
    });
    await stack.admin(`/admin/merchants/${slow.merchantId}`, {
      method: "PATCH",
      body: { rate_limits: { sandbox_rpm: 60, batch_share: 0.01 } },
    });
    for (let i = 0; i < 101; i++) await slow.pay({ amount: "5.00", currency: "EUR", card: "4242424242424242" });
    const range = {
      created_after: new Date(Date.now() - 86_400_000).toISOString(),
      created_before: new Date(Date.now() + 86_400_000).toISOString(),
    };
    const created = await merchantApi("/v1/batches", { body: { kind: "sync", ...range } }, slow.creds.api_key);
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const batchId = created.body.batch.id;

    const page = await newPage();
    await signInWithKey(page, slow.creds.api_key);
    await page.getByRole("link", { name: "Batches" }).click();
    const row = page.locator(`[data-batch="${batchId}"]`);
    await page.locator(`[data-batch="${batchId}"][data-status="running"]`).waitFor({ timeout: SETTLE_MS });
    await row.locator(".batch-counts", { hasText: /100\s+done/ }).waitFor({ timeout: SETTLE_MS });
    await row.getByRole("button", { name: "Cancel", exact: true }).click();
    await screenshot(page, "batch-cancel-confirm");
    await row.getByRole("button", { name: "Yes, cancel it" }).click();
    await page.locator(`[data-batch="${batchId}"][data-status="cancelled"]`).waitFor();
    assert.equal(await row.getByRole("button", { name: "Cancel", exact: true }).count(), 0);
    assert.match(await row.locator(".batch-counts").innerText(), /of\s+100 found before it stopped/);
    const answer = await merchantApi(`/v1/batches/${batchId}`, {}, slow.creds.api_key);
    assert.equal(answer.body.batch.status, "cancelled");
    await screenshot(page, "batch-cancelled");
    assertSameOriginAndClean();
    await page.close();
  });

  it("raises an alert for a payment left authorized, shown in the console", async () => {
    requests = [];
    problems = [];
    // The cron as wrangler dev runs it, two hours from now: the authorization is then an hour past the merchant's threshold.
    const cron = encodeURIComponent("*/5 * * * *");
    const trigger = await http(`${stack.workerUrl}/cdn-cgi/local/scheduled?cron=${cron}&time=${Date.now() + 2 * 3_600_000}`);
    assert.equal(trigger.status, 200, JSON.stringify(trigger.body));

    const page = await newPage();
    await signInWithKey(page, shop.creds.api_key);
    await page.getByRole("link", { name: /Alerts/ }).click();
    const alert = page.locator('[data-kind="authorized_not_captured"]', { has: page.getByRole("link", { name: stuck.id }) });
    await alert.waitFor();
    assert.match(await alert.innerText(), /Authorized, not captured/);
    await page.locator("[data-open-alerts]").waitFor();
    await screenshot(page, "alerts");
    await alert.getByRole("link", { name: stuck.id }).click();
    await page.locator("[data-panel=timeline]").waitFor();
    assertSameOriginAndClean();
    await page.close();
  });

  it("signs in with the admin token, picking a merchant", async () => {
    requests = [];
    problems = [];
    const page = await newPage();
    await page.goto(`${stack.workerUrl}/console`);
    await page.getByRole("tab", { name: "Admin token" }).click();
    await page.getByLabel("Admin token").fill(stack.adminToken);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator(`[data-merchant="${shop.merchantId}"]`).waitFor();
    await screenshot(page, "admin-picker");
    await page.locator(`[data-merchant="${shop.merchantId}"]`).click();
    await page.locator("[data-who=admin]", { hasText: shop.merchantId }).waitFor();
    await page.getByRole("link", { name: "Payments" }).click();
    await page.locator(`[data-transaction="${payment.id}"]`).waitFor();
    await page.getByRole("link", { name: "Budget" }).click();
    await page.locator("[data-panel=budget] tr[data-bucket]").first().waitFor();
    // The ramp chart appears with the second sample, 5 s after the first.
    await page.locator("[data-panel=budget] .chart canvas").waitFor({ timeout: 15_000 });
    await screenshot(page, "budget-admin");
    assertSameOriginAndClean();
    await page.close();
  });

  it("shows the D1 shards and the admin alerts to the admin token, and no Shards page to a merchant key", async () => {
    requests = [];
    problems = [];
    const page = await newPage();
    await page.goto(`${stack.workerUrl}/console`);
    await page.getByRole("tab", { name: "Admin token" }).click();
    await page.getByLabel("Admin token").fill(stack.adminToken);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator(`[data-merchant="${shop.merchantId}"]`).click();
    await page.getByRole("link", { name: "Shards" }).click();
    const { shards } = await stack.admin("/admin/shards");
    for (const shard of shards) {
      const row = page.locator(`[data-panel=shards] tr[data-shard="${shard.binding}"]`);
      await row.waitFor();
      assert.match(await row.innerText(), new RegExp(`${shard.binding}\\s+ok`));
      assert.equal(await row.locator("td").nth(1).innerText(), String(shard.merchants));
      assert.equal(await row.locator("td").last().innerText(), shard.migration);
    }
    // The admin alerts list, in the shape of the merchant's (none open under D1's real capacity).
    const { alerts } = await stack.admin("/admin/alerts?state=open");
    await page
      .locator("[data-panel=shards] .section", { hasText: "Admin alerts" })
      .locator(alerts.length ? ".alert" : ".notice-good")
      .first()
      .waitFor();
    await screenshot(page, "shards-admin");
    assertSameOriginAndClean();
    await page.close();

    requests = [];
    const merchant = await newPage();
    await signInWithKey(merchant, shop.creds.api_key);
    await merchant.locator("[data-who=merchant]").waitFor();
    assert.equal(await merchant.getByRole("link", { name: "Shards" }).count(), 0);
    // Typing the page's address shows the pipeline: a merchant key never asks /admin (it would be refused and signed out).
    await merchant.goto(`${stack.workerUrl}/console#/shards`);
    await merchant.locator("[data-panel=pipeline]").waitFor();
    assert.deepEqual(
      requests.filter((url) => new URL(url).pathname.startsWith("/admin/")),
      [],
    );
    await merchant.close();
  });

  it("shows a server error with its request id, a missing endpoint as not available, and a revoked key back at sign-in", async () => {
    requests = [];
    problems = [];
    const issued = await stack.admin(`/admin/merchants/${shop.merchantId}/api-keys`, { method: "POST" });
    const page = await newPage();
    // A server failure, played by the browser for one endpoint (the stack has none to give): the banner names the request id.
    await page.route("**/v1/pipeline?*", (route) =>
      route.fulfill({
        status: 503,
        contentType: "application/json",
        body: JSON.stringify({ error: { code: "service_unavailable", message: "try again later", request_id: "req-console-test" } }),
      }),
    );
    // An endpoint this deployment does not have: the panel says "not available" instead of failing.
    await page.route("**/v1/budget", (route) =>
      route.fulfill({
        status: 404,
        contentType: "application/json",
        body: JSON.stringify({ error: { code: "not_found", message: "no route for GET /v1/budget", request_id: "req-missing" } }),
      }),
    );
    await signInWithKey(page, issued.api_key.key);
    await page.locator('.banner[data-request-id="req-console-test"]').waitFor();
    await screenshot(page, "server-error");
    await page.getByRole("link", { name: "Budget" }).click();
    await page.locator('[data-panel=budget] [data-state="unavailable"]', { hasText: "not available" }).waitFor();

    await stack.admin(`/admin/merchants/${shop.merchantId}/api-keys/${issued.api_key.id}`, { method: "DELETE" });
    await page.getByRole("link", { name: "Payments" }).click();
    await page.getByRole("alert").filter({ hasText: "Signed out" }).waitFor();
    await page.getByRole("tab", { name: "Merchant API key" }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    problems = problems.filter((text) => !/status of (401|503)/.test(text));
    assertSameOriginAndClean();
    await page.close();
  });
});
