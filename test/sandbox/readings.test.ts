import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  createSandbox,
  DEFAULT_SETTINGS,
  type DeliveryTransport,
  READINGS,
  type Readings,
  readingNames,
  readingPatch,
  type Sandbox,
} from "../../sandbox/index.ts";
import { formatAmount, reformatAmount } from "../../sandbox/money.ts";
import {
  act,
  api,
  BASE,
  basic,
  control,
  createProject,
  type EventObject,
  operations,
  pay,
  type TransactionView,
  timeline,
  truth,
  waitFor,
} from "./helpers.ts";

// Fast timers, real clock: for the steps that happen by themselves.
const sandbox = createSandbox({ timeScale: 0.001 });

// A frozen clock that only `/_sandbox/clock` (or `clock` below) moves, and unscaled delays: a timestamp that moves,
// or an event that becomes readable, does so because the test moved the clock. Deliveries are recorded, and each
// one fetches its event back the moment it arrives, as the service would.
let clock = 1_800_000_000_000;
const delivered: { event_id: string; fetch_back: number }[] = [];
let fetchBackAs: { project: string } | null = null;
const transport: DeliveryTransport = async (request) => {
  const { event_id } = (await request.json()) as { event_id: string };
  const as = fetchBackAs;
  const fetched = as ? await api(clocked, as.project, `/events/${event_id}`) : null;
  delivered.push({ event_id, fetch_back: fetched?.status ?? 0 });
  return new Response("ok");
};
const clocked = createSandbox({ timeScale: 1, now: () => clock, transport });

afterAll(() => {
  sandbox.close();
  clocked.close();
});

const own: Sandbox[] = [];
afterEach(() => {
  for (const one of own.splice(0)) one.close();
});

// Steps wait for /advance; the frozen clock never refills a bucket, so the buckets are made large.
const MANUAL = { auto_advance: false };
const FROZEN = { auto_advance: false, rates: { sandbox: 1_000_000, burst: 10_000 } };

const TIMESTAMPS = ["created_at", "authorized_at", "captured_at", "refunded_at", "voided_at", "chargedback_at"] as const;
function timestamps(tx: TransactionView): Record<string, string | null> {
  return Object.fromEntries(TIMESTAMPS.map((field) => [field, tx[field]]));
}

async function advanceClock(target: Sandbox, ms: number): Promise<string> {
  const moved = await control<{ now: string }>(target, "POST", "/clock", { advance_ms: ms });
  expect(moved.status).toBe(200);
  return moved.body.now;
}

async function events(target: Sandbox, project: string, query = "order=asc&limit=100") {
  return (await api<{ events: EventObject[]; has_more: boolean }>(target, project, `/events?${query}`)).body;
}

interface ProjectBody {
  project: { settings: { readings: Readings } };
}

describe("the readings section of project settings", () => {
  it("defaults to the emulator's first reading, is set at creation and patched field by field", async () => {
    expect(DEFAULT_SETTINGS.readings).toEqual({
      dispute_operations: "pair",
      events_list_items: "full",
      event_read_lag_ms: 0,
      amount_format: "shortest",
      event_snapshot: "frozen",
    });
    const plain = await createProject(sandbox);
    expect((await control<ProjectBody>(sandbox, "GET", `/projects/${plain}`)).body.project.settings.readings).toEqual(
      DEFAULT_SETTINGS.readings,
    );

    const id = await createProject(sandbox, { readings: { dispute_operations: "none" } });
    const created = await control<ProjectBody>(sandbox, "GET", `/projects/${id}`);
    expect(created.body.project.settings.readings).toEqual({ ...DEFAULT_SETTINGS.readings, dispute_operations: "none" });
    const patched = await control<ProjectBody>(sandbox, "PATCH", `/projects/${id}`, { readings: { event_read_lag_ms: 250 } });
    expect(patched.status).toBe(200);
    expect(patched.body.project.settings.readings).toEqual({
      ...DEFAULT_SETTINGS.readings,
      dispute_operations: "none",
      event_read_lag_ms: 250,
    });
  });

  it("refuses unknown switches and values", async () => {
    const id = await createProject(sandbox);
    for (const readings of [
      { dispute_operations: "some" },
      { events_list_items: "partial" },
      { event_read_lag_ms: -1 },
      { event_read_lag_ms: 1.5 },
      { amount_format: "cents" },
      { colour: "red" },
    ]) {
      const answer = await control(sandbox, "PATCH", `/projects/${id}`, { readings });
      expect(answer.status, JSON.stringify(readings)).toBe(400);
      expect(answer.body.error_type).toBe("request.validation.error");
    }
  });

  it("names its presets in sandbox/readings.ts and serves them on GET /_sandbox/readings", async () => {
    expect(readingNames).toEqual(
      expect.arrayContaining(["default", "dispute-no-ops", "list-operations-null", "list-no-data", "read-lag", "shortest-amounts"]),
    );
    expect(READINGS.default).toEqual(DEFAULT_SETTINGS.readings);
    expect(READINGS["read-lag"].event_read_lag_ms).toBe(2000);
    expect(READINGS["dispute-no-ops"]).toEqual({ ...DEFAULT_SETTINGS.readings, dispute_operations: "none" });
    expect(READINGS["list-operations-null"].events_list_items).toBe("operations-null");
    expect(READINGS["list-no-data"].events_list_items).toBe("no-data");
    expect(READINGS["shortest-amounts"].amount_format).toBe("shortest");

    const served = await control<{ readings: Record<string, Readings>; defaults: Readings }>(sandbox, "GET", "/readings");
    expect(served.status).toBe(200);
    expect(served.body).toEqual({ success: true, readings: READINGS, defaults: DEFAULT_SETTINGS.readings });
  });

  it("readingPatch gives a copy of a preset that every project accepts, and names the known ones for an unknown name", async () => {
    for (const name of readingNames) {
      const id = await createProject(sandbox, { readings: readingPatch(name) });
      expect((await control<ProjectBody>(sandbox, "GET", `/projects/${id}`)).body.project.settings.readings, name).toEqual(READINGS[name]);
      // A preset sent as a PATCH replaces the whole reading, whatever came before.
      await control(sandbox, "PATCH", `/projects/${id}`, { readings: readingPatch("combined") });
      await control(sandbox, "PATCH", `/projects/${id}`, { readings: readingPatch(name) });
      expect((await control<ProjectBody>(sandbox, "GET", `/projects/${id}`)).body.project.settings.readings, name).toEqual(READINGS[name]);
    }
    const copy = readingPatch("default");
    copy.event_read_lag_ms = 9;
    expect(READINGS.default.event_read_lag_ms).toBe(0);
    expect(() => readingPatch("nope")).toThrow(/unknown reading "nope"; known readings: default, dispute-no-ops/);
  });
});

describe("dispute_operations", () => {
  const DISPUTE_CARDS: [string, string[]][] = [
    ["4000000000000069", ["chargeback-initiated", "reversed"]],
    ["4000000000000200", ["chargeback-initiated", "solved"]],
    ["4000000000000309", ["retrieval-request"]],
    ["4000000000004004", ["fraud-notification"]],
  ];

  it("none: each dispute step changes status and flags only, with no operation and no timestamp, not even chargedback_at", async () => {
    for (const [card, statuses] of DISPUTE_CARDS) {
      const project = await createProject(clocked, { ...FROZEN, readings: { dispute_operations: "none" } });
      const paid = await pay(clocked, project, { card });
      expect(paid.status, card).toBe("completed");
      const before = timestamps(paid);
      for (const status of statuses) {
        // Moved between steps, so a timestamp that moved would show it.
        await advanceClock(clocked, 60_000);
        const step = await act(clocked, project, paid.id, "advance");
        expect(step.status, card).toBe(200);
        const tx = step.body.transaction;
        expect(tx.status, card).toBe(status);
        expect(tx.operations, card).toHaveLength(4);
        expect(operations(tx), card).toEqual(operations(paid));
        expect(timestamps(tx), card).toEqual(before);
        expect(tx.chargedback, card).toBe(statuses[0] === "chargeback-initiated");
        expect(tx.chargedback_at, card).toBeNull();
      }
      expect((await act(clocked, project, paid.id, "advance")).status, card).toBe(409);
      // The events of the dispute carry the unchanged history; only their fired_at moves with the clock.
      const listed = await events(clocked, project);
      const disputes = listed.events.filter((event) => event.name.startsWith("transaction.chargeback."));
      expect(
        disputes.map((event) => event.data.transaction.status),
        card,
      ).toEqual(statuses);
      expect(
        disputes.every((event) => event.data.transaction.operations?.length === 4),
        card,
      ).toBe(true);
      const captured = listed.events.find((event) => event.name === "transaction.captured");
      expect(
        disputes.every((event) => Date.parse(event.fired_at) > Date.parse(captured?.fired_at ?? "") + 50_000),
        card,
      ).toBe(true);
    }
  });

  it("pair (default): each dispute step appends a chargeback attempt/result pair and chargedback_at is set", async () => {
    const project = await createProject(sandbox, MANUAL);
    const paid = await pay(sandbox, project, { card: "4000000000000069" });
    const created = await act(sandbox, project, paid.id, "advance");
    expect(operations(created.body.transaction).slice(4)).toEqual(["chargeback/attempt -10", "chargeback/ok -10"]);
    expect(created.body.transaction.chargedback_at).not.toBeNull();
    const lost = await act(sandbox, project, paid.id, "advance");
    expect(lost.body.transaction.operations).toHaveLength(8);
  });

  it("applies to the step that runs after a PATCH, whatever the card's earlier steps did", async () => {
    const project = await createProject(sandbox, MANUAL);
    const paid = await pay(sandbox, project, { card: "4000000000000200" });
    expect((await act(sandbox, project, paid.id, "advance")).body.transaction.operations).toHaveLength(6);
    await control(sandbox, "PATCH", `/projects/${project}`, { readings: { dispute_operations: "none" } });
    const won = await act(sandbox, project, paid.id, "advance");
    expect(won.body.transaction).toMatchObject({ status: "solved", chargedback: true });
    expect(won.body.transaction.operations).toHaveLength(6);
  });
});

describe("events_list_items", () => {
  async function listed(items: Readings["events_list_items"]) {
    const project = await createProject(sandbox, { ...MANUAL, readings: { events_list_items: items } });
    const tx = await pay(sandbox, project, { card: "4242424242424242", amount: "22.5" });
    const page = await events(sandbox, project);
    expect(page.events.map((event) => event.name)).toEqual(["transaction.requested", "transaction.authorized", "transaction.captured"]);
    // GET /events/{id} answers the full event under every reading.
    for (const item of page.events) {
      const one = await api<{ event: EventObject }>(sandbox, project, `/events/${item.id}`);
      expect(one.status).toBe(200);
      expect(one.body.event.data.transaction.id).toBe(tx.id);
      expect(Array.isArray(one.body.event.data.transaction.operations)).toBe(true);
    }
    return { project, tx, page };
  }

  it("full (default): every item is the whole event, its transaction with every operation", async () => {
    const { page } = await listed("full");
    expect(page.events.map((event) => event.data.transaction.operations?.length)).toEqual([0, 2, 4]);
    expect(page.events[2]?.data.transaction).toMatchObject({ status: "completed", captured_amount: "22.5" });
  });

  it("operations-null: items carry the transaction with operations null, the rest intact", async () => {
    const { tx, page } = await listed("operations-null");
    for (const event of page.events) {
      expect(event.data.transaction.operations).toBeNull();
      expect(event.data).toMatchObject({ name: event.name, sandbox: true, transaction: { id: tx.id, currency: "EUR", amount: "22.5" } });
    }
    expect(page.events.map((event) => event.data.transaction.status)).toEqual(["waiting", "authorized", "completed"]);
  });

  it("no-data: items have no data key at all; pagination works the same", async () => {
    const { project, page } = await listed("no-data");
    for (const event of page.events) {
      expect("data" in event).toBe(false);
      expect(Object.keys(event).sort()).toEqual(["fired_at", "id", "name", "project_id", "sandbox"]);
    }
    const first = await events(sandbox, project, "order=asc&limit=2");
    expect(first.has_more).toBe(true);
    const next = await events(sandbox, project, `order=asc&limit=2&start_after=${first.events[1]?.id}`);
    expect(next.events.map((event) => event.name)).toEqual(["transaction.captured"]);
    expect(next.has_more).toBe(false);
  });
});

describe("event_read_lag_ms", () => {
  afterEach(() => {
    fetchBackAs = null;
  });

  it("hides an event for the lag after firing: 404 on GET /events/{id}, left out of GET /events, while its webhook is already sent", async () => {
    const project = await createProject(clocked, { ...FROZEN, readings: readingPatch("read-lag") });
    await control(clocked, "POST", `/projects/${project}/webhooks`, { url: "http://receiver.test/hooks" });
    fetchBackAs = { project };
    const tx = await pay(clocked, project, { card: "4242424242424242" });
    const ids = (await truth(clocked, project)).events.map((event) => event.id);
    expect(ids).toHaveLength(3);

    // Every webhook went out, and the fetch-back it caused found nothing yet.
    const arrived = await waitFor(() => {
      const mine = delivered.filter((delivery) => ids.includes(delivery.event_id));
      return mine.length === 3 ? mine : undefined;
    });
    expect(arrived.map((delivery) => delivery.fetch_back)).toEqual([404, 404, 404]);

    for (const id of ids) {
      const hidden = await api(clocked, project, `/events/${id}`);
      expect(hidden.status).toBe(404);
      expect(hidden.body).toEqual({ success: false, error_type: "resource.event.not-found", message: expect.any(String) });
    }
    expect(await events(clocked, project)).toEqual({ success: true, events: [], has_more: false });
    // A hidden event is no cursor either; the transaction itself is readable at once.
    expect((await api(clocked, project, `/events?start_after=${ids[0]}`)).status).toBe(400);
    expect((await api(clocked, project, `/transactions/${tx.id}`)).status).toBe(200);

    await advanceClock(clocked, 1999);
    expect((await api(clocked, project, `/events/${ids[0]}`)).status).toBe(404);
    await advanceClock(clocked, 1);
    for (const id of ids) expect((await api(clocked, project, `/events/${id}`)).status).toBe(200);
    expect((await events(clocked, project)).events.map((event) => event.id)).toEqual(ids);
  });

  it("shows the older events and hides only the newer ones", async () => {
    const project = await createProject(clocked, { ...FROZEN, readings: { event_read_lag_ms: 1000 } });
    await pay(clocked, project, { apm: "sandbox-apm" });
    await advanceClock(clocked, 600);
    await pay(clocked, project, { apm: "sandbox-apm" });
    await advanceClock(clocked, 600);
    const [older, newer] = (await truth(clocked, project)).events;
    expect((await events(clocked, project)).events.map((event) => event.id)).toEqual([older?.id]);
    expect((await api(clocked, project, `/events/${newer?.id}`)).status).toBe(404);
    await advanceClock(clocked, 400);
    expect((await events(clocked, project)).events.map((event) => event.id)).toEqual([older?.id, newer?.id]);
  });

  it("is scaled by timeScale like the delays", async () => {
    let now = 1_900_000_000_000;
    const half = createSandbox({ timeScale: 0.5, now: () => now });
    own.push(half);
    const project = await createProject(half, { ...FROZEN, readings: { event_read_lag_ms: 2000 } });
    await pay(half, project, { apm: "sandbox-apm" });
    const [event] = (await truth(half, project)).events;
    now += 999;
    expect((await api(half, project, `/events/${event?.id}`)).status).toBe(404);
    now += 1;
    expect((await api(half, project, `/events/${event?.id}`)).status).toBe(200);
  });
});

describe("amount_format", () => {
  it("formats minor units with every decimal of the currency, and rewrites the emulator's amounts", () => {
    expect(formatAmount(1000, "EUR", "fixed")).toBe("10.00");
    expect(formatAmount(1050, "EUR", "fixed")).toBe("10.50");
    expect(formatAmount(-500, "EUR", "fixed")).toBe("-5.00");
    expect(formatAmount(0, "EUR", "fixed")).toBe("0.00");
    expect(formatAmount(1500, "JPY", "fixed")).toBe("1500");
    expect(formatAmount(1500, "KWD", "fixed")).toBe("1.500");
    expect(formatAmount(1050, "EUR", "shortest")).toBe("10.5");
    expect(reformatAmount("-10.5", "EUR", "fixed")).toBe("-10.50");
    expect(reformatAmount("10.50", "EUR", "shortest")).toBe("10.5");
    expect(reformatAmount("-5", "EUR", "shortest")).toBe("-5");
  });

  it("shortest (default): no trailing zeros anywhere", async () => {
    const project = await createProject(sandbox, { ...MANUAL, readings: readingPatch("shortest-amounts") });
    const tx = await pay(sandbox, project, { card: "4000000000000069", amount: "10.50" });
    const created = await act(sandbox, project, tx.id, "advance");
    expect(created.body.transaction).toMatchObject({ amount: "10.5", captured_amount: "10.5", refunded_amount: "0" });
    expect(operations(created.body.transaction).slice(3)).toEqual(["capture/ok 10.5", "chargeback/attempt -10.5", "chargeback/ok -10.5"]);
  });

  it("fixed: every amount of transactions and operations, in events, API reads, control answers and /truth", async () => {
    const project = await createProject(sandbox, { ...MANUAL, readings: { amount_format: "fixed" } });
    const tx = await pay(sandbox, project, { card: "4000000000000069", amount: "10" });
    expect(tx).toMatchObject({
      amount: "10.00",
      authorized_amount: "10.00",
      captured_amount: "10.00",
      refunded_amount: "0.00",
      available_amount: "10.00",
      voided_amount: "0.00",
    });
    await act(sandbox, project, tx.id, "advance");
    const lost = await act(sandbox, project, tx.id, "advance");
    const expected = [
      "authorization/attempt 10.00",
      "authorization/ok 10.00",
      "capture/attempt 10.00",
      "capture/ok 10.00",
      "chargeback/attempt -10.00",
      "chargeback/ok -10.00",
      "chargeback/attempt 0.00",
      "chargeback/ok 0.00",
    ];
    expect(operations(lost.body.transaction)).toEqual(expected);

    const one = await api<{ transaction: TransactionView }>(sandbox, project, `/transactions/${tx.id}`);
    expect(one.body.transaction).toMatchObject({ amount: "10.00", captured_amount: "10.00", operations: null });
    const many = await api<{ transactions: TransactionView[] }>(sandbox, project, "/transactions?expand[]=operations");
    expect(operations(many.body.transactions[0] ?? one.body.transaction)).toEqual(expected);
    expect(operations((await truth(sandbox, project)).transactions[0] ?? one.body.transaction)).toEqual(expected);

    const page = await events(sandbox, project);
    const last = page.events.at(-1);
    expect(last?.name).toBe("transaction.chargeback.lost");
    expect(operations(last?.data.transaction ?? one.body.transaction)).toEqual(expected);
    const fetched = await api<{ event: EventObject }>(sandbox, project, `/events/${last?.id}`);
    expect(fetched.body.event.data.transaction).toMatchObject({ amount: "10.00", captured_amount: "10.00" });
    expect(operations(fetched.body.event.data.transaction)).toEqual(expected);

    // Stored events are rewritten on the way out: switching back shows the same event in the other form.
    await control(sandbox, "PATCH", `/projects/${project}`, { readings: { amount_format: "shortest" } });
    const again = await api<{ event: EventObject }>(sandbox, project, `/events/${last?.id}`);
    expect(again.body.event.data.transaction.amount).toBe("10");
    expect(operations(again.body.event.data.transaction).slice(4)).toEqual([
      "chargeback/attempt -10",
      "chargeback/ok -10",
      "chargeback/attempt 0",
      "chargeback/ok 0",
    ]);
  });

  it("fixed keeps each currency's own decimals, partial amounts included", async () => {
    const project = await createProject(sandbox, { ...MANUAL, readings: readingPatch("fixed-amounts") });
    expect((await pay(sandbox, project, { card: "4242424242424242", amount: "1500", currency: "JPY" })).captured_amount).toBe("1500");
    expect((await pay(sandbox, project, { card: "4242424242424242", amount: "1.5", currency: "KWD" })).captured_amount).toBe("1.500");
    const euros = await pay(sandbox, project, { card: "4242424242424242", amount: "10" });
    const refund = await act(sandbox, project, euros.id, "refund", { amount: "2.5" });
    expect(refund.body.transaction).toMatchObject({ refunded_amount: "2.50", available_amount: "7.50", status: "partially-refunded" });
  });

  it("fixed reads a scripted snapshot that lacks an amount: the ones it has reformatted, the missing one left out", async () => {
    const project = await createProject(sandbox, { readings: readingPatch("fixed-amounts") });
    const transaction = {
      id: "tr_scripted1",
      status: "authorized",
      currency: "EUR",
      amount: "40",
      authorized_amount: "40",
      captured_amount: "0",
    };
    const scripted = await control<{ event: { id: string } }>(sandbox, "POST", `/projects/${project}/events`, {
      name: "transaction.authorized",
      transaction,
    });
    const read = await api<{ event: EventObject }>(sandbox, project, `/events/${scripted.body.event.id}`);
    expect(read.status).toBe(200);
    expect(read.body.event.data.transaction).toMatchObject({ amount: "40.00", authorized_amount: "40.00", captured_amount: "0.00" });
    expect(read.body.event.data.transaction).not.toHaveProperty("voided_amount", expect.anything());
  });
});

describe("fraud review (in-review, blocked)", () => {
  it("approve with manual capture: the authorization pair is on record, in-review, then authorized with no new operation or timestamp", async () => {
    const project = await createProject(clocked, FROZEN);
    const tx = await pay(clocked, project, { card: "4242424242424242", review: "approve", capture: "manual" });
    expect(tx).toMatchObject({ status: "in-review", authorized: true, authorized_amount: "10", captured: false });
    expect(tx.authorized_at).not.toBeNull();
    expect(operations(tx)).toEqual(["authorization/attempt 10", "authorization/ok 10"]);
    expect((await act(clocked, project, tx.id, "capture")).status).toBe(409);
    expect((await act(clocked, project, tx.id, "void")).status).toBe(409);

    await advanceClock(clocked, 60_000);
    const approved = await act(clocked, project, tx.id, "advance");
    expect(approved.body.outcome).toBe("succeeded");
    expect(approved.body.transaction.status).toBe("authorized");
    expect(operations(approved.body.transaction)).toEqual(operations(tx));
    expect(timestamps(approved.body.transaction)).toEqual(timestamps(tx));
    expect(await timeline(clocked, project, tx.id)).toEqual([
      "transaction.requested:waiting",
      "transaction.in-review:in-review",
      "transaction.authorized:authorized",
    ]);
    // From here it is an ordinary authorization.
    const captured = await act(clocked, project, tx.id, "capture");
    expect(captured.body.transaction.status).toBe("completed");
  });

  it("approve with automatic capture goes on to captured; the authorized event's history is the in-review one", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { card: "4242424242424242", review: "approve" });
    const done = await act(sandbox, project, tx.id, "advance");
    expect(done.body.transaction.status).toBe("completed");
    expect(await timeline(sandbox, project, tx.id)).toEqual([
      "transaction.requested:waiting",
      "transaction.in-review:in-review",
      "transaction.authorized:authorized",
      "transaction.captured:completed",
    ]);
    const page = await events(sandbox, project);
    expect(page.events.map((event) => event.data.transaction.operations?.length)).toEqual([0, 2, 2, 4]);
  });

  it("block: blocked for good, with no operation; nothing can follow", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { card: "4242424242424242", review: "block" });
    const blocked = await act(sandbox, project, tx.id, "advance");
    expect(blocked.body.outcome).toBe("declined");
    expect(blocked.body.transaction).toMatchObject({ status: "blocked", captured: false });
    expect(operations(blocked.body.transaction)).toEqual(["authorization/attempt 10", "authorization/ok 10"]);
    expect(timestamps(blocked.body.transaction)).toEqual(timestamps(tx));
    for (const action of ["advance", "capture", "void", "refund"]) {
      expect((await act(sandbox, project, tx.id, action)).status, action).toBe(409);
    }
    expect(await timeline(sandbox, project, tx.id)).toEqual([
      "transaction.requested:waiting",
      "transaction.in-review:in-review",
      "transaction.blocked:blocked",
    ]);
  });

  it("ends by itself after dispute_ms × timeScale when auto_advance is on", async () => {
    const project = await createProject(sandbox, { delays: { dispute_ms: 2000 } });
    const tx = await pay(sandbox, project, { card: "4242424242424242", review: "block" });
    expect(tx.status).toBe("in-review");
    const steps = await waitFor(async () => {
      const names = await timeline(sandbox, project, tx.id);
      return names.length === 3 ? names : undefined;
    });
    expect(steps.at(-1)).toBe("transaction.blocked:blocked");
  });

  it("is for cards only; a declined card fails before any review", async () => {
    const project = await createProject(sandbox, MANUAL);
    for (const body of [
      { amount: "10", currency: "EUR", apm: "sandbox-apm", review: "approve" },
      { amount: "10", currency: "EUR", card: "4242424242424242", review: "maybe" },
    ]) {
      const refused = await control(sandbox, "POST", `/projects/${project}/transactions`, body);
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.body.error_type).toBe("request.validation.error");
    }
    const declined = await pay(sandbox, project, { card: "4000000000000002", review: "approve" });
    expect(await timeline(sandbox, project, declined.id)).toEqual(["transaction.requested:waiting", "transaction.failed:failed"]);
  });
});

describe("PATCH /_sandbox/projects/{p}/transactions/{t}", () => {
  it("edits metadata and error fields, fires transaction.updated, appends no operation and moves no timestamp", async () => {
    const project = await createProject(clocked, FROZEN);
    const tx = await pay(clocked, project, { card: "4242424242424242", metadata: { order: "1" } });
    await advanceClock(clocked, 60_000);
    const edited = await control<{ transaction: TransactionView }>(clocked, "PATCH", `/projects/${project}/transactions/${tx.id}`, {
      metadata: { order: "2", note: "gift" },
      error_code: "risk.review",
      error_message: "Looked at by a human.",
    });
    expect(edited.status).toBe(200);
    expect(edited.body.transaction).toMatchObject({
      status: "completed",
      metadata: { order: "2", note: "gift" },
      error_code: "risk.review",
      error_message: "Looked at by a human.",
    });
    expect(operations(edited.body.transaction)).toEqual(operations(tx));
    expect(timestamps(edited.body.transaction)).toEqual(timestamps(tx));
    expect((await timeline(clocked, project, tx.id)).at(-1)).toBe("transaction.updated:completed");
    const updated = (await events(clocked, project)).events.at(-1);
    expect(updated?.data.transaction).toMatchObject({ metadata: { order: "2", note: "gift" }, error_code: "risk.review" });

    const cleared = await control<{ transaction: TransactionView }>(clocked, "PATCH", `/projects/${project}/transactions/${tx.id}`, {
      error_code: null,
      error_message: null,
    });
    expect(cleared.body.transaction).toMatchObject({ metadata: { order: "2", note: "gift" }, error_code: null, error_message: null });
  });

  it("refuses empty, unknown and mistyped edits, and unknown transactions", async () => {
    const project = await createProject(sandbox, MANUAL);
    const tx = await pay(sandbox, project, { card: "4242424242424242" });
    for (const body of [{}, { status: "failed" }, { metadata: { order: 1 } }, { error_code: "" }]) {
      const answer = await control(sandbox, "PATCH", `/projects/${project}/transactions/${tx.id}`, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
    }
    expect(await timeline(sandbox, project, tx.id)).not.toContain("transaction.updated:completed");
    const missing = await control(sandbox, "PATCH", `/projects/${project}/transactions/tr_nope`, { metadata: {} });
    expect(missing.status).toBe(404);
  });
});

describe("the clock", () => {
  it("POST /_sandbox/clock moves now for timestamps, fired_at and the Date header; the injected clock still runs under it", async () => {
    const project = await createProject(clocked, FROZEN);
    const start = (await control<{ now: string }>(clocked, "GET", "/clock")).body.now;
    expect(start).toBe(new Date(Date.parse(start)).toISOString());
    const moved = await control<{ now: string }>(clocked, "POST", "/clock", { advance_ms: 90_000 });
    expect(moved.body).toEqual({ success: true, now: new Date(Date.parse(start) + 90_000).toISOString() });
    const tx = await pay(clocked, project, { apm: "sandbox-apm" });
    expect(tx.created_at).toBe(moved.body.now);
    expect((await truth(clocked, project)).events[0]?.fired_at).toBe(moved.body.now);
    const answer = await api(clocked, project, `/transactions/${tx.id}`);
    expect(answer.headers.get("date")).toBe(new Date(Date.parse(moved.body.now)).toUTCString());

    clock += 5000;
    expect((await control<{ now: string }>(clocked, "GET", "/clock")).body.now).toBe(new Date(Date.parse(start) + 95_000).toISOString());
  });

  it("only moves forward, by whole milliseconds; a reset puts it back on the injected clock", async () => {
    for (const body of [{}, { advance_ms: -1 }, { advance_ms: 1.5 }, { advance_ms: "10" }, { advance_ms: 10, extra: 1 }]) {
      expect((await control(clocked, "POST", "/clock", body)).status, JSON.stringify(body)).toBe(400);
    }
    const fixed = 1_700_000_000_000;
    const target = createSandbox({ timeScale: 0.001, now: () => fixed });
    own.push(target);
    await advanceClock(target, 1000);
    expect((await control<{ now: string }>(target, "GET", "/clock")).body.now).toBe(new Date(fixed + 1000).toISOString());
    await control(target, "POST", "/reset");
    expect((await control<{ now: string }>(target, "GET", "/clock")).body.now).toBe(new Date(fixed).toISOString());
  });
});

describe("Date header and fired_at", () => {
  it("every API answer carries an HTTP Date from the emulator's clock, errors included", async () => {
    const project = await createProject(clocked, FROZEN);
    const now = Date.parse((await control<{ now: string }>(clocked, "GET", "/clock")).body.now);
    const expected = new Date(now).toUTCString();
    expect(expected).toMatch(/^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$/);
    for (const path of ["/events", "/transactions", "/events/ev_nope", "/invoices"]) {
      expect((await api(clocked, project, path)).headers.get("date"), path).toBe(expected);
    }
    const unauthorized = await clocked.fetch(new Request(`${BASE}/events`, { headers: { authorization: basic(project, "wrong") } }));
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get("date")).toBe(expected);
    // The real-clock emulator's Date is the real time, to the second.
    const real = await createProject(sandbox);
    const date = (await api(sandbox, real, "/events")).headers.get("date");
    expect(Math.abs(Date.parse(date ?? "") - Date.now())).toBeLessThan(5000);
  });

  it("fired_at strictly increases per project, 1 ms apart when the clock has not moved", async () => {
    const project = await createProject(clocked, FROZEN);
    const now = Date.parse((await control<{ now: string }>(clocked, "GET", "/clock")).body.now);
    const tx = await pay(clocked, project, { card: "4242424242424242" });
    await pay(clocked, project, { card: "4242424242424242" });
    const fired = (await truth(clocked, project)).events.map((event) => Date.parse(event.fired_at));
    expect(fired).toEqual([now, now + 1, now + 2, now + 3, now + 4, now + 5]);
    // The transaction's own timestamps stay on the clock.
    expect(tx.captured_at).toBe(new Date(now).toISOString());
    await advanceClock(clocked, 1000);
    await act(clocked, project, tx.id, "refund");
    expect(Date.parse((await truth(clocked, project)).events.at(-1)?.fired_at ?? "")).toBe(now + 1000);
  });

  it("fired_at strictly increases on the real clock too, across many payments", async () => {
    const project = await createProject(sandbox, MANUAL);
    for (let i = 0; i < 20; i++) await pay(sandbox, project, { card: "4242424242424242" });
    const fired = (await truth(sandbox, project)).events.map((event) => Date.parse(event.fired_at));
    expect(fired).toHaveLength(60);
    for (let i = 1; i < fired.length; i++) expect(fired[i] ?? 0).toBeGreaterThan(fired[i - 1] ?? 0);
  });
});

describe("event_snapshot", () => {
  it("live: an early event read late shows the transaction as it is now, its fired_at unchanged; frozen (default) shows it as fired", async () => {
    for (const event_snapshot of ["live", "frozen"] as const) {
      const project = await createProject(clocked, { ...FROZEN, readings: { event_snapshot } });
      const paid = await pay(clocked, project, { card: "4242424242424242", capture: "manual" });
      const authorizedEvent = (await events(clocked, project)).events.find((event) => event.name === "transaction.authorized");
      await act(clocked, project, paid.id, "capture");
      const read = await api<{ event: EventObject }>(clocked, project, `/events/${authorizedEvent?.id}`);
      expect(read.body.event.fired_at, event_snapshot).toBe(authorizedEvent?.fired_at);
      expect(read.body.event.data.transaction.status, event_snapshot).toBe(event_snapshot === "live" ? "completed" : "authorized");
    }
  });
});

describe("scripted events (POST /_sandbox/projects/{p}/events)", () => {
  it("stores any snapshot a test writes, readable by id and in the list, with the given fired_at and an optional slow read", async () => {
    const project = await createProject(sandbox);
    const transaction = { id: "tr_scripted1", project_id: project, status: "solved", amount: "10", currency: "EUR", operations: [] };
    const written = await control<{ event: EventObject }>(sandbox, "POST", `/projects/${project}/events`, {
      name: "transaction.chargeback.won",
      transaction,
      fired_at: "2026-11-01T10:00:00.123Z",
      read_delay_ms: 30,
    });
    expect(written.status).toBe(201);
    const started = Date.now();
    const read = await api<{ event: EventObject }>(sandbox, project, `/events/${written.body.event.id}`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect(read.body.event).toMatchObject({ name: "transaction.chargeback.won", fired_at: "2026-11-01T10:00:00.123Z" });
    expect(read.body.event.data.transaction).toMatchObject(transaction);
    expect((await events(sandbox, project)).events.map((event) => event.id)).toEqual([written.body.event.id]);
  });

  it("refuses a transaction without a tr_ id and unknown fields", async () => {
    const project = await createProject(sandbox);
    for (const body of [
      { name: "transaction.x", transaction: { id: "nope" } },
      { name: "transaction.x", transaction: { id: "tr_1" }, extra: 1 },
    ]) {
      expect((await control(sandbox, "POST", `/projects/${project}/events`, body)).status).toBe(400);
    }
  });
});
