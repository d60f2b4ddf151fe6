import { afterEach, describe, expect, it } from "vitest";
import { type Counters, createSandbox, type DeliveryTransport, type RelayedDelivery, type Sandbox } from "../../sandbox/index.ts";
import { api, control, createProject, type EventObject, pay, waitFor } from "./helpers.ts";

interface Received {
  url: string;
  authorization: string | null;
  contentType: string | null;
  body: { event_id: string; event_type: string };
  at: number;
}

interface LogEntry {
  event_type: string;
  attempt: number;
  status: number | null;
  outcome: string;
  forged: boolean;
  duplicate: boolean;
}

const open: Sandbox[] = [];
afterEach(() => {
  for (const one of open.splice(0)) one.close();
});

/** A sandbox whose deliveries go to `answer`, recording every request. */
function withReceiver(
  answer: (received: Received, index: number) => Promise<Response> | Response,
  options: { random?: () => number } = {},
) {
  const received: Received[] = [];
  const transport: DeliveryTransport = async (request) => {
    const entry: Received = {
      url: request.url,
      authorization: request.headers.get("authorization"),
      contentType: request.headers.get("content-type"),
      body: (await request.json()) as Received["body"],
      at: Date.now(),
    };
    received.push(entry);
    return answer(entry, received.length - 1);
  };
  const sandbox = createSandbox({ timeScale: 0.001, transport, ...options });
  open.push(sandbox);
  return { sandbox, received };
}

async function deliveries(sandbox: Sandbox, project: string): Promise<LogEntry[]> {
  return (await control<{ deliveries: LogEntry[] }>(sandbox, "GET", `/projects/${project}/deliveries`)).body.deliveries;
}

async function deliveryCounters(sandbox: Sandbox, project: string) {
  const { body } = await control<{ counters: Counters; backlog: Record<string, number> }>(sandbox, "GET", `/projects/${project}/counters`);
  return { ...body.counters.deliveries, backlog: body.backlog };
}

async function register(sandbox: Sandbox, project: string, url: string, events?: string[]) {
  const created = await control<{ endpoint: { id: string } }>(
    sandbox,
    "POST",
    `/projects/${project}/webhooks`,
    events ? { url, events } : { url },
  );
  expect(created.status).toBe(201);
  return created.body.endpoint.id;
}

const ok = () => new Response("ok");

describe("webhook deliveries", () => {
  it("posts {event_id, event_type} for every event, with Basic credentials taken out of the URL", async () => {
    const { sandbox, received } = withReceiver(ok);
    const project = await createProject(sandbox);
    await register(sandbox, project, "https://shop%40user:p%40ss:word@receiver.test/hooks/m1?x=1");
    await pay(sandbox, project, { card: "4242424242424242" });
    await waitFor(() => (received.length === 3 ? true : undefined));
    expect(received.map((r) => r.body.event_type).sort()).toEqual([
      "transaction.authorized",
      "transaction.captured",
      "transaction.requested",
    ]);
    for (const delivery of received) {
      expect(delivery.url).toBe("https://receiver.test/hooks/m1?x=1");
      expect(delivery.authorization).toBe(`Basic ${btoa("shop@user:p@ss:word")}`);
      expect(delivery.contentType).toBe("application/json");
      expect(Object.keys(delivery.body).sort()).toEqual(["event_id", "event_type"]);
      // Fetch-back works for every delivered id.
      const fetched = await api<{ event: EventObject }>(sandbox, project, `/events/${delivery.body.event_id}`);
      expect(fetched.body.event.name).toBe(delivery.body.event_type);
    }
    const counters = await deliveryCounters(sandbox, project);
    expect(counters).toMatchObject({ scheduled: 3, attempts: 3, succeeded: 3, failed: 0, retries: 0 });
    expect(counters.backlog).toEqual({ parked: 0, claimed: 0, in_flight: 0, timers: 0 });
  });

  it("sends to every endpoint, honouring an event-name whitelist; a deleted endpoint gets nothing", async () => {
    const { sandbox, received } = withReceiver(ok);
    const project = await createProject(sandbox);
    await register(sandbox, project, "http://all.test/");
    await register(sandbox, project, "http://captured-only.test/", ["transaction.captured"]);
    const gone = await register(sandbox, project, "http://gone.test/");
    expect((await control(sandbox, "DELETE", `/projects/${project}/webhooks/${gone}`)).status).toBe(200);
    await pay(sandbox, project, { card: "4242424242424242" });
    await waitFor(() => (received.length === 4 ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(received.filter((r) => r.url === "http://captured-only.test/").map((r) => r.body.event_type)).toEqual(["transaction.captured"]);
    expect(received.filter((r) => r.url === "http://all.test/")).toHaveLength(3);
    expect(received.some((r) => r.url === "http://gone.test/")).toBe(false);
    expect(received.every((r) => r.authorization === null)).toBe(true);
  });

  it("retries with exponential backoff until a 2xx: 500, network error, then 200", async () => {
    const { sandbox, received } = withReceiver((_, index) => {
      if (index === 0) return new Response("no", { status: 500 });
      if (index === 1) throw new TypeError("connection refused");
      return ok();
    });
    const project = await createProject(sandbox, { auto_advance: false, webhook: { backoff_base_ms: 20_000 } });
    await register(sandbox, project, "http://receiver.test/");
    await pay(sandbox, project, { apm: "sandbox-apm" }); // one event: the APM stays pending
    await waitFor(() => (received.length === 3 ? true : undefined), 3000, "three attempts");
    const [first, second, third] = received.map((r) => r.at);
    // 20 000 ms × 0.001 = 20 ms, then 40 ms.
    expect((second ?? 0) - (first ?? 0)).toBeGreaterThanOrEqual(19);
    expect((third ?? 0) - (second ?? 0)).toBeGreaterThanOrEqual(39);
    expect(new Set(received.map((r) => r.body.event_id)).size).toBe(1);
    const log = await waitFor(async () => {
      const entries = await deliveries(sandbox, project);
      return entries.length === 3 ? entries : undefined;
    });
    expect(log.map((entry) => [entry.attempt, entry.status, entry.outcome])).toEqual([
      [1, 500, "failed"],
      [2, 0, "network-error"],
      [3, 200, "succeeded"],
    ]);
    expect(await deliveryCounters(sandbox, project)).toMatchObject({
      attempts: 3,
      failed: 1,
      network_errors: 1,
      succeeded: 1,
      retries: 2,
      gave_up: 0,
    });
  });

  it("gives up after max_attempts", async () => {
    const { sandbox, received } = withReceiver(() => new Response("down", { status: 503 }));
    const project = await createProject(sandbox, { auto_advance: false, webhook: { max_attempts: 3, backoff_base_ms: 1000 } });
    await register(sandbox, project, "http://receiver.test/");
    await pay(sandbox, project, { apm: "sandbox-apm" });
    const counters = await waitFor(async () => {
      const seen = await deliveryCounters(sandbox, project);
      return seen.gave_up === 1 ? seen : undefined;
    });
    expect(counters).toMatchObject({ attempts: 3, failed: 3, retries: 2, gave_up: 1 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(received).toHaveLength(3);
  });

  it("counts a receiver slower than timeout_ms as a failed attempt and retries", async () => {
    const { sandbox, received } = withReceiver((_, index) => (index === 0 ? new Promise<Response>(() => undefined) : ok()));
    const project = await createProject(sandbox, { auto_advance: false, webhook: { timeout_ms: 40, backoff_base_ms: 1000 } });
    await register(sandbox, project, "http://receiver.test/");
    await pay(sandbox, project, { apm: "sandbox-apm" });
    const log = await waitFor(async () => {
      const entries = await deliveries(sandbox, project);
      return entries.length === 2 ? entries : undefined;
    });
    expect(log.map((entry) => entry.outcome)).toEqual(["network-error", "succeeded"]);
    expect(received).toHaveLength(2);
  });
});

describe("relay mode", () => {
  function relaySandbox(): Sandbox {
    const sandbox = createSandbox({ timeScale: 0.001, transport: "relay" });
    open.push(sandbox);
    return sandbox;
  }

  async function claim(sandbox: Sandbox, project?: string): Promise<RelayedDelivery[]> {
    const answer = await control<{ deliveries: RelayedDelivery[] }>(
      sandbox,
      "POST",
      `/deliveries/claim${project ? `?project=${project}` : ""}`,
    );
    expect(answer.status).toBe(200);
    return answer.body.deliveries;
  }

  async function claimSome(sandbox: Sandbox, project: string, count: number): Promise<RelayedDelivery[]> {
    const collected: RelayedDelivery[] = [];
    return waitFor(async () => {
      collected.push(...(await claim(sandbox, project)));
      return collected.length >= count ? collected : undefined;
    });
  }

  it("parks due deliveries for a claimer, who reports results; retries are parked again", async () => {
    const sandbox = relaySandbox();
    const project = await createProject(sandbox, { webhook: { backoff_base_ms: 5000 } });
    const other = await createProject(sandbox, { auto_advance: false });
    await register(sandbox, project, "http://u:p@worker.test/webhooks/smart-router/m1");
    await register(sandbox, other, "http://worker.test/other");
    await pay(sandbox, other, { apm: "sandbox-apm" });
    await pay(sandbox, project, { card: "4242424242424242" });

    const claimed = await claimSome(sandbox, project, 3);
    expect(claimed).toHaveLength(3);
    for (const delivery of claimed) {
      expect(delivery).toMatchObject({ url: "http://worker.test/webhooks/smart-router/m1", attempt: 1, project_id: project });
      expect(delivery.headers).toMatchObject({ authorization: `Basic ${btoa("u:p")}`, "content-type": "application/json" });
      expect(JSON.parse(delivery.body)).toEqual({
        event_id: expect.stringMatching(/^ev_/),
        event_type: expect.stringMatching(/^transaction\./),
      });
    }
    // Claimed deliveries are not handed out twice.
    expect(await claim(sandbox, project)).toEqual([]);

    const [failing, ...rest] = claimed;
    if (!failing) throw new Error("nothing claimed");
    for (const delivery of rest)
      expect((await control(sandbox, "POST", `/deliveries/${delivery.id}/result`, { status: 200 })).status).toBe(200);
    expect((await control(sandbox, "POST", `/deliveries/${failing.id}/result`, { status: 0 })).status).toBe(200);
    // Reported once is final.
    expect((await control(sandbox, "POST", `/deliveries/${failing.id}/result`, { status: 200 })).status).toBe(404);

    const [retry] = await claimSome(sandbox, project, 1);
    expect(retry).toMatchObject({ delivery_id: failing.delivery_id, attempt: 2, body: failing.body });
    expect(retry?.id).not.toBe(failing.id);
    await control(sandbox, "POST", `/deliveries/${retry?.id}/result`, { status: 204 });

    const counters = await deliveryCounters(sandbox, project);
    expect(counters).toMatchObject({ scheduled: 3, attempts: 4, succeeded: 3, network_errors: 1, retries: 1 });
    // The other project's delivery is still waiting for its own claimer.
    expect((await claim(sandbox)).map((delivery) => delivery.project_id)).toEqual([other]);
  });

  it("treats a claimed delivery never reported within timeout_ms as a timeout", async () => {
    const sandbox = relaySandbox();
    const project = await createProject(sandbox, { auto_advance: false, webhook: { timeout_ms: 30, backoff_base_ms: 1000 } });
    await register(sandbox, project, "http://worker.test/");
    await pay(sandbox, project, { apm: "sandbox-apm" });
    const [first] = await claimSome(sandbox, project, 1);
    const [second] = await claimSome(sandbox, project, 1);
    expect(second).toMatchObject({ delivery_id: first?.delivery_id, attempt: 2 });
    expect((await control(sandbox, "POST", `/deliveries/${first?.id}/result`, { status: 200 })).status).toBe(404);
    expect((await deliveries(sandbox, project))[0]).toMatchObject({ attempt: 1, status: 0, outcome: "network-error" });
  });

  it("refuses bad relay calls", async () => {
    const sandbox = relaySandbox();
    expect((await control(sandbox, "POST", "/deliveries/att_nope/result", { status: 200 })).status).toBe(404);
    expect((await control(sandbox, "POST", "/deliveries/att_nope/result", { status: 700 })).status).toBe(400);
    expect((await control(sandbox, "POST", "/deliveries/claim?limit=0")).status).toBe(400);
    const fetching = createSandbox();
    open.push(fetching);
    const refused = await control(fetching, "POST", "/deliveries/claim");
    expect(refused.status).toBe(409);
  });
});

describe("delivery chaos", () => {
  it("duplicates deliveries at duplicate_rate", async () => {
    const { sandbox, received } = withReceiver(ok, { random: () => 0 });
    const project = await createProject(sandbox, { chaos: { duplicate_rate: 1 } });
    await register(sandbox, project, "http://receiver.test/");
    await pay(sandbox, project, { card: "4242424242424242" });
    await waitFor(() => (received.length === 6 ? true : undefined));
    const perEvent = new Map<string, number>();
    for (const r of received) perEvent.set(r.body.event_id, (perEvent.get(r.body.event_id) ?? 0) + 1);
    expect([...perEvent.values()]).toEqual([2, 2, 2]);
    expect(await deliveryCounters(sandbox, project)).toMatchObject({ scheduled: 6, duplicated: 3, succeeded: 6 });
    expect((await deliveries(sandbox, project)).filter((entry) => entry.duplicate)).toHaveLength(3);
  });

  it("drops deliveries at drop_rate: a missed webhook is never sent, only logged", async () => {
    const draws = [0.1, 0.9, 0.2];
    let i = 0;
    const { sandbox, received } = withReceiver(ok, { random: () => draws[i++] ?? 0.99 });
    const project = await createProject(sandbox, { chaos: { drop_rate: 0.5 } });
    await register(sandbox, project, "http://receiver.test/");
    await pay(sandbox, project, { card: "4242424242424242" });
    await waitFor(() => (received.length === 1 ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(received.map((r) => r.body.event_type)).toEqual(["transaction.authorized"]);
    expect(await deliveryCounters(sandbox, project)).toMatchObject({ scheduled: 1, dropped: 2, attempts: 1 });
    const log = await deliveries(sandbox, project);
    expect(log.filter((entry) => entry.outcome === "dropped").map((entry) => entry.event_type)).toEqual([
      "transaction.requested",
      "transaction.captured",
    ]);
  });

  it("forges deliveries with unknown event ids at forge_rate; fetch-back answers 404; no retries", async () => {
    let project = "";
    const { sandbox, received } = withReceiver(
      async (delivery) => {
        // A receiver that verifies by fetch-back, as the service under test does.
        const check = await api(sandbox, project, `/events/${delivery.body.event_id}`);
        return check.status === 404 ? new Response("forged", { status: 400 }) : ok();
      },
      { random: () => 0 },
    );
    project = await createProject(sandbox, { chaos: { forge_rate: 1 }, rates: { burst: 100 } });
    await register(sandbox, project, "http://receiver.test/");
    await pay(sandbox, project, { card: "4242424242424242" });
    await waitFor(() => (received.length === 6 ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const { events } = (await api<{ events: EventObject[] }>(sandbox, project, "/events?limit=100")).body;
    const real = new Set(events.map((event) => event.id));
    const forged = received.filter((r) => !real.has(r.body.event_id));
    expect(forged).toHaveLength(3);
    expect(forged.every((r) => /^ev_[A-Za-z0-9]+$/.test(r.body.event_id))).toBe(true);
    const counters = await deliveryCounters(sandbox, project);
    expect(counters).toMatchObject({ forged: 3, scheduled: 6, attempts: 6, succeeded: 3, failed: 3, retries: 0, gave_up: 0 });
  });

  it("reorders deliveries with a random extra delay (max_extra_delay_ms × timeScale)", async () => {
    const draws = [0.9, 0.5, 0];
    let i = 0;
    const { sandbox, received } = withReceiver(ok, { random: () => draws[i++] ?? 0 });
    const project = await createProject(sandbox, { chaos: { max_extra_delay_ms: 60_000 } });
    await register(sandbox, project, "http://receiver.test/");
    await pay(sandbox, project, { card: "4242424242424242" });
    await waitFor(() => (received.length === 3 ? true : undefined));
    expect(received.map((r) => r.body.event_type)).toEqual(["transaction.captured", "transaction.authorized", "transaction.requested"]);
  });
});
