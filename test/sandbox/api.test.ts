import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type Counters, createSandbox, type Sandbox } from "../../sandbox/index.ts";
import { api, BASE, basic, control, createProject, type EventObject, pay, type TransactionView, uniqueProject } from "./helpers.ts";

const sandbox = createSandbox({ timeScale: 0.001 });
afterAll(() => sandbox.close());

// Sandboxes with their own clock or chance, closed after each test.
const extra: Sandbox[] = [];
afterEach(() => {
  for (const one of extra.splice(0)) one.close();
});
function own(options: Parameters<typeof createSandbox>[0]): Sandbox {
  const created = createSandbox(options);
  extra.push(created);
  return created;
}

async function counters(target: Sandbox, project: string) {
  return (await control<{ counters: Counters }>(target, "GET", `/projects/${project}/counters`)).body.counters;
}

describe("authentication", () => {
  it("refuses missing, malformed, unknown and wrong credentials with 401 request.authentication.invalid and rate-limit headers", async () => {
    const project = await createProject(sandbox);
    const attempts: Record<string, string | undefined> = {
      missing: undefined,
      bearer: "Bearer sk",
      garbage: "Basic !!!",
      "no colon": `Basic ${btoa(project)}`,
      "unknown project": basic("test-proj_nobody", "sk"),
      "wrong secret": basic(project, "not-the-secret"),
      "secret of another case": basic(project, `SK_${project}`),
    };
    for (const [label, authorization] of Object.entries(attempts)) {
      const response = await sandbox.fetch(new Request(`${BASE}/events`, authorization ? { headers: { authorization } } : {}));
      expect(response.status, label).toBe(401);
      expect(await response.json(), label).toEqual({
        success: false,
        error_type: "request.authentication.invalid",
        message: expect.any(String),
      });
      expect(response.headers.get("x-ratelimit"), label).toMatch(/^[0-9]+$/);
      expect(response.headers.get("x-ratelimit-remaining"), label).toMatch(/^[0-9]+$/);
    }
    // Only the requests naming this project with a wrong secret count against it; its buckets are untouched.
    const seen = await counters(sandbox, project);
    expect(seen.auth_failures).toBe(2);
    expect(seen.api.sandbox.requests).toBe(0);
  });

  it("accepts the project's own id and secret", async () => {
    const project = await createProject(sandbox);
    expect((await api(sandbox, project, "/events")).status).toBe(200);
  });
});

describe("events and transactions", () => {
  it("serves an event with the full transaction snapshot of its time, sandbox flags and RFC 3339 timestamps", async () => {
    const project = await createProject(sandbox);
    const tx = await pay(sandbox, project, { card: "4242424242424242", amount: "22.99", currency: "USD", metadata: { order: "42" } });
    const list = await api<{ events: EventObject[] }>(sandbox, project, "/events?order=asc");
    const [requested, authorized, captured] = list.body.events;
    expect(list.body.events.map((event) => event.name)).toEqual([
      "transaction.requested",
      "transaction.authorized",
      "transaction.captured",
    ]);
    const fetched = await api<{ event: EventObject }>(sandbox, project, `/events/${captured?.id}`);
    expect(fetched.status).toBe(200);
    const event = fetched.body.event;
    expect(event).toMatchObject({ id: captured?.id, project_id: project, name: "transaction.captured", sandbox: true });
    expect(event.id).toMatch(/^ev_[A-Za-z0-9]+$/);
    expect(event.fired_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
    expect(event.data.name).toBe("transaction.captured");
    expect(event.data.sandbox).toBe(true);
    expect(event.data.transaction).toMatchObject({
      id: tx.id,
      status: "completed",
      amount: "22.99",
      captured_amount: "22.99",
      available_amount: "22.99",
      currency: "USD",
      metadata: { order: "42" },
      sandbox: true,
      gateway_name: "sandbox",
      payment_type: "card",
    });
    expect(event.data.transaction.operations).toHaveLength(4);
    // Snapshots are of their time: the requested event still shows a waiting transaction with no operations.
    expect(requested?.data.transaction.status).toBe("waiting");
    expect(requested?.data.transaction.operations).toEqual([]);
    expect(authorized?.data.transaction.status).toBe("authorized");
    expect(authorized?.data.transaction.captured_amount).toBe("0");
  });

  it("answers unknown events with 404 resource.event.not-found, also for another project's event", async () => {
    const project = await createProject(sandbox);
    const other = await createProject(sandbox);
    await pay(sandbox, other, { card: "4242424242424242" });
    const foreign = (await api<{ events: EventObject[] }>(sandbox, other, "/events")).body.events[0];
    for (const id of ["ev_doesnotexist", foreign?.id ?? ""]) {
      const answer = await api(sandbox, project, `/events/${id}`);
      expect(answer.status).toBe(404);
      expect(answer.body).toEqual({ success: false, error_type: "resource.event.not-found", message: expect.any(String) });
    }
  });

  it("GET /transactions/{id}: operations null unless expand[]=operations; 404 when unknown", async () => {
    const project = await createProject(sandbox);
    const tx = await pay(sandbox, project, { card: "4242424242424242" });
    const plain = await api<{ transaction: TransactionView }>(sandbox, project, `/transactions/${tx.id}`);
    expect(plain.body.transaction.operations).toBeNull();
    expect(plain.body.transaction.id).toMatch(/^tr_[A-Za-z0-9]+$/);
    expect(plain.body.transaction.invoice_id).toMatch(/^iv_[A-Za-z0-9]+$/);
    const expanded = await api<{ transaction: TransactionView }>(sandbox, project, `/transactions/${tx.id}?expand[]=operations`);
    expect(expanded.body.transaction.operations?.map((operation) => operation.id)).toEqual(tx.operations?.map((operation) => operation.id));
    expect(expanded.body.transaction.operations?.every((operation) => /^tr_op_[A-Za-z0-9]+$/.test(operation.id))).toBe(true);
    const missing = await api(sandbox, project, "/transactions/tr_nope");
    expect(missing.status).toBe(404);
    expect(missing.body.error_type).toBe("resource.transaction.not-found");
  });

  it("answers unknown routes with 404 request.route-not-found, still rate-limited", async () => {
    const project = await createProject(sandbox);
    const answer = await api(sandbox, project, "/invoices");
    expect(answer.status).toBe(404);
    expect(answer.body.error_type).toBe("request.route-not-found");
    expect(answer.headers.get("x-ratelimit")).toBe("1200");
  });

  it("marks live projects' objects sandbox: false", async () => {
    const live = await createProject(sandbox, {}, uniqueProject("proj"));
    await pay(sandbox, live, { card: "4242424242424242" });
    const page = await api<{ events: EventObject[] }>(sandbox, live, "/events");
    expect(page.body.events.every((event) => event.sandbox === false && event.data.transaction.sandbox === false)).toBe(true);
  });
});

describe("rate limits", () => {
  it("counts a sandbox project's requests against the sandbox bucket: headers on every answer, 429 with Retry-After when empty", async () => {
    let now = 1_800_000_000_000;
    const target = own({ now: () => now });
    const project = await createProject(target, { rates: { sandbox: 60, burst: 3 } });
    const remaining: (string | null)[] = [];
    for (let i = 0; i < 3; i++) {
      const answer = await api(target, project, i === 1 ? "/transactions" : "/events");
      expect(answer.status).toBe(200);
      expect(answer.headers.get("x-ratelimit")).toBe("60");
      remaining.push(answer.headers.get("x-ratelimit-remaining"));
    }
    expect(remaining).toEqual(["2", "1", "0"]);
    const refused = await api(target, project, "/events");
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ success: false, error_type: "request.rate.exceeded", message: expect.any(String) });
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(refused.headers.get("x-ratelimit")).toBe("60");
    expect(refused.headers.get("x-ratelimit-remaining")).toBe("0");

    now += 1000;
    const again = await api(target, project, "/events");
    expect(again.status).toBe(200);
    expect(again.headers.get("x-ratelimit-remaining")).toBe("0");

    const seen = await counters(target, project);
    expect(seen.api.sandbox).toEqual({ requests: 5, succeeded: 4, client_errors: 0, rate_limited: 1, injected_429: 0, injected_5xx: 0 });
    expect(seen.api.primary.requests + seen.api.events.requests).toBe(0);
  });

  it("gives a live project independent primary and events buckets", async () => {
    const target = own({ now: () => 1_800_000_000_000 });
    const project = await createProject(target, { rates: { primary: 60, events: 120, burst: 2 } }, uniqueProject("proj"));
    expect((await api(target, project, "/transactions")).headers.get("x-ratelimit")).toBe("60");
    expect((await api(target, project, "/transactions")).status).toBe(200);
    expect((await api(target, project, "/transactions")).status).toBe(429);
    // Business traffic on the events bucket is untouched by an exhausted primary bucket.
    const event = await api(target, project, "/events/ev_unknown");
    expect(event.status).toBe(404);
    expect(event.headers.get("x-ratelimit")).toBe("120");
    expect(event.headers.get("x-ratelimit-remaining")).toBe("1");
    const list = await api(target, project, "/events");
    expect(list.status).toBe(200);
    expect(list.headers.get("x-ratelimit-remaining")).toBe("0");
    const seen = await counters(target, project);
    expect(seen.api.primary).toMatchObject({ requests: 3, succeeded: 2, rate_limited: 1 });
    expect(seen.api.events).toMatchObject({ requests: 2, succeeded: 1, client_errors: 1, rate_limited: 0 });
  });

  it("sandbox_bucket both: a sandbox request needs a token from both buckets and shows the tighter one", async () => {
    let now = 1_800_000_000_000;
    const target = own({ now: () => now });
    const project = await createProject(target, { rates: { sandbox: 600, events: 60, burst: 2, sandbox_bucket: "both" } });
    expect((await api(target, project, "/events")).headers.get("x-ratelimit-remaining")).toBe("1");
    expect((await api(target, project, "/events")).status).toBe(200);
    now += 100; // the sandbox bucket (600 rpm) has a token again, the events bucket (60 rpm) does not
    const refused = await api(target, project, "/events");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("x-ratelimit")).toBe("60");
    // The refused request took nothing from the sandbox bucket: a primary request still finds its token.
    const primary = await api(target, project, "/transactions");
    expect(primary.status).toBe(200);
    expect(primary.headers.get("x-ratelimit")).toBe("600");
    const seen = await counters(target, project);
    expect(seen.api.sandbox).toMatchObject({ requests: 4, succeeded: 3 });
    expect(seen.api.events).toMatchObject({ requests: 3, succeeded: 2, rate_limited: 1 });
    expect(seen.api.primary).toMatchObject({ requests: 1, succeeded: 1 });
  });

  it("applies rate changes made through the control API", async () => {
    const target = own({ now: () => 1_800_000_000_000 });
    const project = await createProject(target);
    expect((await api(target, project, "/events")).headers.get("x-ratelimit")).toBe("1200");
    const patched = await control(target, "PATCH", `/projects/${project}`, { rates: { sandbox: 30, burst: 1 } });
    expect(patched.status).toBe(200);
    const answer = await api(target, project, "/events");
    expect(answer.headers.get("x-ratelimit")).toBe("30");
    expect(answer.status).toBe(429);
  });
});

describe("API chaos", () => {
  it("injects 503s at api_5xx_rate, after the token is taken, counted apart", async () => {
    const draws = [0.1, 0.9, 0.3, 0.7];
    let i = 0;
    const target = own({ random: () => draws[i++ % draws.length] ?? 0 });
    const project = await createProject(target, { chaos: { api_5xx_rate: 0.5 } });
    const statuses: number[] = [];
    for (let k = 0; k < 4; k++) statuses.push((await api(target, project, "/events")).status);
    expect(statuses).toEqual([503, 200, 503, 200]);
    const failed = await api(target, project, "/events");
    expect(failed.body.error_type).toBe("service.unavailable");
    expect(failed.headers.get("x-ratelimit")).toBe("1200");
    const seen = await counters(target, project);
    expect(seen.api.sandbox).toMatchObject({ requests: 5, succeeded: 2, injected_5xx: 3, rate_limited: 0 });
  });

  it("injects 429s at api_429_rate with Retry-After, counted apart from real ones", async () => {
    const target = own({ random: () => 0 });
    const project = await createProject(target, { chaos: { api_429_rate: 1 } });
    const answer = await api(target, project, "/transactions");
    expect(answer.status).toBe(429);
    expect(answer.body.error_type).toBe("request.rate.exceeded");
    expect(answer.headers.get("retry-after")).toBe("1");
    expect(answer.headers.get("x-ratelimit-remaining")).toBe("0");
    const seen = await counters(target, project);
    expect(seen.api.sandbox).toMatchObject({ requests: 1, injected_429: 1, rate_limited: 0, succeeded: 0 });
  });

  it("delays answers by api_latency_ms × timeScale", async () => {
    const target = own({ timeScale: 0.5 });
    const project = await createProject(target, { chaos: { api_latency_ms: 120 } });
    const started = Date.now();
    expect((await api(target, project, "/events")).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
    await control(target, "PATCH", `/projects/${project}`, { chaos: { api_latency_ms: 0 } });
    const quick = Date.now();
    await api(target, project, "/events");
    expect(Date.now() - quick).toBeLessThan(55);
  });
});
