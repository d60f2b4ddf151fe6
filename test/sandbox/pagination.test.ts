import { afterAll, describe, expect, it } from "vitest";
import { createSandbox } from "../../sandbox/index.ts";
import { api, createProject, type EventObject, pay, type TransactionView } from "./helpers.ts";

const sandbox = createSandbox({ timeScale: 0.001 });
afterAll(() => sandbox.close());

interface EventPage {
  events: EventObject[];
  has_more: boolean;
}
interface TransactionPage {
  transactions: TransactionView[];
  has_more: boolean;
}

// Generous rates: these tests page a lot and are not about rate limits.
const FAST = { rates: { sandbox: 100_000, burst: 1000 } };

/** A project with `count` card payments (3 events each) and the ids, oldest first. */
async function seeded(count: number) {
  const project = await createProject(sandbox, FAST);
  const transactions: string[] = [];
  for (let i = 0; i < count; i++) transactions.push((await pay(sandbox, project, { card: "4242424242424242" })).id);
  const all = await api<EventPage>(sandbox, project, "/events?limit=100&order=asc");
  return { project, transactions, events: all.body.events.map((event) => event.id) };
}

describe("GET /events pagination", () => {
  it("answers an empty list with has_more false", async () => {
    const project = await createProject(sandbox, FAST);
    const page = await api<EventPage>(sandbox, project, "/events");
    expect(page.status).toBe(200);
    expect(page.body).toEqual({ success: true, events: [], has_more: false });
  });

  it("lists newest first by default, 10 per page, limit=0 meaning the default", async () => {
    const { project, events } = await seeded(5);
    expect(events).toHaveLength(15);
    const first = await api<EventPage>(sandbox, project, "/events");
    expect(first.body.events.map((event) => event.id)).toEqual([...events].reverse().slice(0, 10));
    expect(first.body.has_more).toBe(true);
    const zero = await api<EventPage>(sandbox, project, "/events?limit=0");
    expect(zero.body.events.map((event) => event.id)).toEqual(first.body.events.map((event) => event.id));
  });

  it("walks an exact multiple of the limit with start_after: the last full page says has_more false", async () => {
    const { project, events } = await seeded(2); // 6 events
    const seen: string[] = [];
    let cursor = "";
    const flags: boolean[] = [];
    for (;;) {
      const page = await api<EventPage>(sandbox, project, `/events?limit=3&order=asc${cursor ? `&start_after=${cursor}` : ""}`);
      seen.push(...page.body.events.map((event) => event.id));
      flags.push(page.body.has_more);
      const last = page.body.events.at(-1);
      if (!page.body.has_more || !last) break;
      cursor = last.id;
    }
    expect(seen).toEqual(events);
    expect(flags).toEqual([true, false]);
    const after = await api<EventPage>(sandbox, project, `/events?limit=3&order=asc&start_after=${events[5]}`);
    expect(after.body).toEqual({ success: true, events: [], has_more: false });
  });

  it("walks newest first with start_after and back with end_before", async () => {
    const { project, events } = await seeded(3); // 9 events
    const newest = [...events].reverse();
    const page1 = await api<EventPage>(sandbox, project, "/events?limit=4");
    expect(page1.body.events.map((e) => e.id)).toEqual(newest.slice(0, 4));
    const page2 = await api<EventPage>(sandbox, project, `/events?limit=4&start_after=${newest[3]}`);
    expect(page2.body.events.map((e) => e.id)).toEqual(newest.slice(4, 8));
    expect(page2.body.has_more).toBe(true);
    const page3 = await api<EventPage>(sandbox, project, `/events?limit=4&start_after=${newest[7]}`);
    expect(page3.body.events.map((e) => e.id)).toEqual(newest.slice(8));
    expect(page3.body.has_more).toBe(false);

    // end_before: the `limit` items just before the cursor, in the same order; has_more = more before them.
    const back = await api<EventPage>(sandbox, project, `/events?limit=4&end_before=${newest[8]}`);
    expect(back.body.events.map((e) => e.id)).toEqual(newest.slice(4, 8));
    expect(back.body.has_more).toBe(true);
    const front = await api<EventPage>(sandbox, project, `/events?limit=4&end_before=${newest[4]}`);
    expect(front.body.events.map((e) => e.id)).toEqual(newest.slice(0, 4));
    expect(front.body.has_more).toBe(false);
    const short = await api<EventPage>(sandbox, project, `/events?limit=4&end_before=${newest[2]}`);
    expect(short.body.events.map((e) => e.id)).toEqual(newest.slice(0, 2));
    expect(short.body.has_more).toBe(false);
    const none = await api<EventPage>(sandbox, project, `/events?end_before=${newest[0]}`);
    expect(none.body).toEqual({ success: true, events: [], has_more: false });
  });

  it("honours order=asc with end_before", async () => {
    const { project, events } = await seeded(2);
    const page = await api<EventPage>(sandbox, project, `/events?order=asc&limit=2&end_before=${events[4]}`);
    expect(page.body.events.map((e) => e.id)).toEqual(events.slice(2, 4));
    expect(page.body.has_more).toBe(true);
  });

  it("refuses start_after with end_before, unknown cursors, bad limits and orders with 400 request.pagination.invalid", async () => {
    const { project, events } = await seeded(1);
    const other = await seeded(1);
    const cases = [
      `/events?start_after=${events[0]}&end_before=${events[1]}`,
      "/events?start_after=ev_doesnotexist",
      "/events?end_before=ev_doesnotexist",
      // A real event id of another project is unknown here too.
      `/events?start_after=${other.events[0]}`,
      "/events?limit=101",
      "/events?limit=-1",
      "/events?limit=ten",
      "/events?limit=2.5",
      "/events?order=newest",
    ];
    for (const path of cases) {
      const answer = await api(sandbox, project, path);
      expect(answer.status, path).toBe(400);
      expect(answer.body.success, path).toBe(false);
      expect(answer.body.error_type, path).toBe("request.pagination.invalid");
    }
    const max = await api<EventPage>(sandbox, project, "/events?limit=100");
    expect(max.status).toBe(200);
  });
});

describe("GET /transactions pagination", () => {
  it("lists newest first, with operations only when expanded", async () => {
    const { project, transactions } = await seeded(3);
    const page = await api<TransactionPage>(sandbox, project, "/transactions?limit=2");
    expect(page.body.transactions.map((tx) => tx.id)).toEqual([transactions[2], transactions[1]]);
    expect(page.body.has_more).toBe(true);
    expect(page.body.transactions.every((tx) => tx.operations === null)).toBe(true);
    const next = await api<TransactionPage>(sandbox, project, `/transactions?limit=2&start_after=${transactions[1]}&expand[]=operations`);
    expect(next.body.transactions.map((tx) => tx.id)).toEqual([transactions[0]]);
    expect(next.body.has_more).toBe(false);
    expect(next.body.transactions[0]?.operations).toHaveLength(4);
    const bad = await api(sandbox, project, "/transactions?start_after=tr_nope");
    expect(bad.status).toBe(400);
    expect(bad.body.error_type).toBe("request.pagination.invalid");
  });
});
