import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { runBatch } from "../../../src/db/bulk";
import { openDatabase } from "../../../src/db/client";
import { PIPELINE_MINUTES_KEPT_MINUTES } from "../../../src/db/schema";
import { LAG_SAMPLE, PIPELINE_WINDOW_MINUTES } from "../../../src/operations/pipeline";
import { applySnapshots } from "../../../src/transactions/apply";
import { type EventRecord, recordEvents } from "../../../src/transactions/inbox";
import { countFirstDeliveries } from "../../../src/transactions/pipeline-minutes";
import { inboxRecord, snapshot } from "../../support/apply";
import { createMerchant, uniqueId } from "../../support/fixtures";
import { planText } from "../../support/query-plan";
import { dbFor, SHARDS } from "../../support/shards";
import { type Pipeline, pipelineOf } from "../console-api/support";

// 0032: GET /v1/pipeline counts the first deliveries folded into the inbox (0024) from pipeline_minutes, which the inbox
// write's own D1 batch keeps in step (src/transactions/pipeline-minutes.ts). These tests write the inbox as the consumer
// does (recordEvents, applySnapshots) and hold the answer to what the former reads of the inbox itself would answer.

const MINUTE_MS = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** Waits, if need be, until the wall clock is well inside a minute, so a window computed here is the one the request sees. */
async function wellInsideAMinute() {
  const left = MINUTE_MS - (Date.now() % MINUTE_MS);
  if (left < 5_000) await new Promise((resolve) => setTimeout(resolve, left + 100));
}

/** An inbox record first received at `receivedAt`, first delivered as `d_{eventId}`. */
const record = (merchantId: string, eventId: string, over: Partial<EventRecord> & { receivedAt: string }): EventRecord =>
  inboxRecord(merchantId, eventId, { now: over.receivedAt, firstDeliveryId: `d_${eventId}`, ...over });

/** A webhook's verified snapshot applied as the consumer applies it: the transaction upsert and its inbox row, one batch. */
async function applyVerified(
  merchantId: string,
  item: {
    eventId: string;
    transactionId: string;
    status: string;
    operations: number;
    receivedAt: string;
    now: string;
    firstDeliveryId: string | null;
  },
) {
  const { eventId, receivedAt, now, firstDeliveryId } = item;
  return applySnapshots({
    db: openDatabase(await dbFor(merchantId)),
    snapshots: [
      {
        merchantId,
        snapshot: snapshot(item.transactionId, item.status, item.operations),
        source: { kind: "event", eventId, eventName: `transaction.${item.status}`, firedAt: receivedAt },
        inbox: { eventId, deliveries: 1, receivedAt, now, firstDeliveryId },
      },
    ],
    fulfillment: () => "not_configured",
    now,
  });
}

/** What the reads before 0032 answered from the inbox itself (events_first_delivery's rows), over [since, until]. */
async function fromInbox(merchantId: string, since: string, until: string) {
  const rows = await (await dbFor(merchantId))
    .prepare(
      `SELECT substr(first_received_at, 1, 16) AS minute, outcome,
         (julianday(processed_at) - julianday(first_received_at)) * 86400000 AS lag
       FROM events WHERE merchant_id = ? AND first_delivery_id IS NOT NULL AND first_received_at >= ? AND first_received_at <= ?`,
    )
    .bind(merchantId, since, until)
    .all<{ minute: string; outcome: string; lag: number | null }>();
  const outcomes: Record<string, number> = { applied: 0, stale: 0, duplicate: 0, rejected: 0, pending: 0, ignored: 0 };
  const perMinute: Record<string, number> = {};
  const lags: number[] = [];
  for (const row of rows.results) {
    outcomes[row.outcome] = (outcomes[row.outcome] ?? 0) + 1;
    perMinute[`${row.minute}:00.000Z`] = (perMinute[`${row.minute}:00.000Z`] ?? 0) + 1;
    if (row.outcome === "applied" && row.lag !== null) lags.push(row.lag);
  }
  lags.sort((a, b) => a - b);
  const rank = (q: number) => {
    const value = lags[Math.min(lags.length - 1, Math.max(0, Math.ceil(q * lags.length) - 1))];
    return value === undefined ? null : Math.round(value);
  };
  return { outcomes, perMinute, lag_ms: { p50: rank(0.5), p99: rank(0.99) } };
}

/** The pipeline's answer in the shape of `fromInbox`: minutes with a count only. */
function answered(pipeline: Pipeline) {
  const perMinute = Object.fromEntries(pipeline.deliveries_per_minute.filter((m) => m.count > 0).map((m) => [m.minute, m.count]));
  return { outcomes: pipeline.outcomes, perMinute, lag_ms: pipeline.lag_ms };
}

/** Holds the pipeline's answer (default window) to the former reads of the inbox over the same window. */
async function expectSameAsInbox(merchantId: string, apiKey: string) {
  const pipeline = await pipelineOf(apiKey);
  expect(answered(pipeline)).toEqual(await fromInbox(merchantId, pipeline.from, pipeline.to));
  return pipeline;
}

/** The merchant's pipeline_minutes rows, minute order. */
async function minuteRows(merchantId: string) {
  const rows = await (await dbFor(merchantId))
    .prepare("SELECT minute, pending, applied, stale, rejected, ignored, lags FROM pipeline_minutes WHERE merchant_id = ? ORDER BY minute")
    .bind(merchantId)
    .all<{ minute: string; pending: number; applied: number; stale: number; rejected: number; ignored: number; lags: string }>();
  return rows.results;
}

describe("GET /v1/pipeline from pipeline_minutes (0032): the same answer as the inbox's own rows (happy)", () => {
  it("counts first deliveries by outcome as they change: pending then applied, rejected then verified, duplicates once", async () => {
    await wellInsideAMinute();
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const db = await dbFor(merchantId);
    const t = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 10 * MINUTE_MS;
    const [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map((name) => uniqueId(`ev_${name}`)) as [string, string, string, string, string];
    // Step 1: a fetch-back failed (pending, retried), an ignored event, a first 404 (pending, asked again later) at the
    // minute's last ms, an event twice in one statement (pending, then applied) in the next minute, and an event no
    // webhook brought (the event log's: no first delivery, never counted).
    const first = recordEvents([
      record(merchantId, a, { receivedAt: iso(t + 5_000), deliveries: 0, detail: "network" }),
      record(merchantId, b, { receivedAt: iso(t + 6_000), outcome: "ignored", now: iso(t + 7_000) }),
      record(merchantId, c, { receivedAt: iso(t + 59_999), detail: "not found at Smart Router yet; asked again later" }),
      record(merchantId, d, { receivedAt: iso(t + MINUTE_MS) }),
      record(merchantId, d, {
        receivedAt: iso(t + MINUTE_MS + 10),
        outcome: "applied",
        now: iso(t + MINUTE_MS + 1_234),
        firstDeliveryId: "d_later",
      }),
      record(merchantId, e, { receivedAt: iso(t + 8_000), outcome: "ignored", firstDeliveryId: null }),
    ]);
    await runBatch(db, first);
    let shown = await expectSameAsInbox(merchantId, merchant.api_key);
    expect(shown.outcomes).toMatchObject({ pending: 2, ignored: 1, applied: 1 });
    // The queue redelivers the same batch (its invocation died after the commit): nothing counts twice.
    await runBatch(db, first);
    expect((await pipelineOf(merchant.api_key)).outcomes).toEqual(shown.outcomes);

    // Step 2: the retried fetch-back verifies a (pending → applied, lagging 2.5 s); c's second 404 rejects it; b comes again.
    const paymentOfA = uniqueId("tr_pm");
    await applyVerified(merchantId, {
      eventId: a,
      transactionId: paymentOfA,
      status: "completed",
      operations: 3,
      receivedAt: iso(t + 5_000),
      now: iso(t + 7_500),
      firstDeliveryId: "d_retried",
    });
    await runBatch(db, [
      ...recordEvents([
        record(merchantId, c, { receivedAt: iso(t + 59_999), outcome: "rejected", detail: "unknown", now: iso(t + 70_000) }),
        record(merchantId, b, { receivedAt: iso(t + 30_000), firstDeliveryId: "d_duplicate" }),
      ]),
    ]);
    shown = await expectSameAsInbox(merchantId, merchant.api_key);
    expect(shown.outcomes).toMatchObject({ pending: 0, rejected: 1, applied: 2, ignored: 1 });

    // Step 3: the event log proves c real after all, but a newer snapshot of its payment is stored first: rejected → stale.
    const payment = uniqueId("tr_pm");
    await applyVerified(merchantId, {
      eventId: uniqueId("ev_log"),
      transactionId: payment,
      status: "completed",
      operations: 4,
      receivedAt: iso(t),
      now: iso(t + 80_000),
      firstDeliveryId: null,
    });
    await applyVerified(merchantId, {
      eventId: c,
      transactionId: payment,
      status: "authorized",
      operations: 2,
      receivedAt: iso(t + 59_999),
      now: iso(t + 90_000),
      firstDeliveryId: null,
    });
    // And a's verification once more (a replay): applied sticks, nothing is added.
    await applyVerified(merchantId, {
      eventId: a,
      transactionId: paymentOfA,
      status: "completed",
      operations: 3,
      receivedAt: iso(t + 5_000),
      now: iso(t + 99_000),
      firstDeliveryId: "d_retried",
    });
    shown = await expectSameAsInbox(merchantId, merchant.api_key);
    expect(shown.outcomes).toEqual({ applied: 2, stale: 1, duplicate: 0, rejected: 0, pending: 0, ignored: 1 });
    expect(shown.lag_ms).toEqual({ p50: 1_234, p99: 2_500 });
    // The minute boundary: c (at :59.999) in the first minute, d (at :00.000) in the next.
    expect(await minuteRows(merchantId)).toEqual([
      { minute: iso(t).slice(0, 16), pending: 0, applied: 1, stale: 1, rejected: 0, ignored: 1, lags: "[2500]" },
      { minute: iso(t + MINUTE_MS).slice(0, 16), pending: 0, applied: 1, stale: 0, rejected: 0, ignored: 0, lags: "[1234]" },
    ]);
  });

  it("answers every window from 1 to 1,440 minutes from the minutes it covers, its first minute whole", async () => {
    await wellInsideAMinute();
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const now = Date.now();
    const at = (minutesAgo: number) => iso(Math.floor(now / MINUTE_MS) * MINUTE_MS - minutesAgo * MINUTE_MS + 1_000);
    await runBatch(await dbFor(merchantId), [
      ...recordEvents([
        record(merchantId, uniqueId("ev_w"), { receivedAt: at(1_439), outcome: "ignored" }),
        record(merchantId, uniqueId("ev_w"), { receivedAt: at(1_441), outcome: "ignored" }),
        record(merchantId, uniqueId("ev_w"), { receivedAt: at(30), outcome: "ignored" }),
        // In the first minute of a 5-minute window, a second after that minute began: before `from`, counted with its minute.
        record(merchantId, uniqueId("ev_w"), { receivedAt: at(5), outcome: "ignored" }),
        record(merchantId, uniqueId("ev_w"), { receivedAt: at(0), outcome: "ignored" }),
      ]),
    ]);
    const ignored = async (window: number) => (await pipelineOf(merchant.api_key, `?window_minutes=${window}`)).outcomes.ignored;
    expect(await ignored(PIPELINE_WINDOW_MINUTES.max)).toBe(4);
    expect(await ignored(60)).toBe(3);
    expect(await ignored(PIPELINE_WINDOW_MINUTES.min)).toBe(1);
    const five = await pipelineOf(merchant.api_key, "?window_minutes=5");
    expect(five.deliveries_per_minute).toHaveLength(6);
    expect(five.deliveries_per_minute.map((m) => m.count)).toEqual([1, 0, 0, 0, 0, 1]);
    // The rows are kept past the widest window.
    expect(PIPELINE_MINUTES_KEPT_MINUTES).toBeGreaterThan(PIPELINE_WINDOW_MINUTES.max + 1);
  });

  it("takes the lags of the newest minutes until LAG_SAMPLE are in, and no more rows of lags", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const minute = (minutesAgo: number) => iso(Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - minutesAgo * MINUTE_MS).slice(0, 16);
    const lags = (count: number, ms: number) => JSON.stringify(Array.from({ length: count }, () => ms));
    // Seeded as the writer leaves them: the newest minute LAG_SAMPLE - 1 lags of 10 ms, the one before 2 of 20 ms, the
    // oldest 5 of 9,999 ms (beyond the sample: not read).
    const shard = await dbFor(merchantId);
    await shard.batch(
      [
        [minute(3), LAG_SAMPLE - 1, 10],
        [minute(4), 2, 20],
        [minute(5), 5, 9_999],
      ].map(([m, count, ms]) =>
        shard
          .prepare("INSERT INTO pipeline_minutes (merchant_id, minute, applied, lags) VALUES (?, ?, ?, ?)")
          .bind(merchantId, m, count, lags(Number(count), Number(ms))),
      ),
    );
    const pipeline = await pipelineOf(merchant.api_key);
    expect(pipeline.outcomes.applied).toBe(LAG_SAMPLE + 6);
    // The sample: LAG_SAMPLE - 1 of 10 ms and one of 20 ms (the second minute is cut); p99 is 10 ms, not 9,999.
    expect(pipeline.lag_ms).toEqual({ p50: 10, p99: 10 });
  });
});

describe("pipeline_minutes: what the inbox write costs, and what it never counts (errors and edges)", () => {
  it("writes one row per (merchant, minute) for any number of events, no events_first_delivery entry, and nothing on a replay", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const db = await dbFor(merchantId);
    const base = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 20 * MINUTE_MS;
    const reads: number[] = [];
    const written = async (count: number, offset: number) => {
      const records = Array.from({ length: count }, (_, n) =>
        record(merchantId, uniqueId("ev_n"), { receivedAt: iso(base + offset + n), outcome: "ignored" }),
      );
      const statements = recordEvents(records);
      expect(statements).toHaveLength(2);
      const results = await runBatch(db, statements);
      const replay = await runBatch(db, statements);
      reads.push((results[0]?.meta.rows_read ?? 0) / count);
      return {
        minutes: results[0]?.meta.rows_written,
        inbox: results[1]?.meta.rows_written,
        replayed: replay[0]?.meta.rows_written,
      };
    };
    // The row and its events_transaction entry, nothing else; the minute's row once per statement.
    expect(await written(5, 0)).toEqual({ minutes: 1, inbox: 10, replayed: 0 });
    expect(await written(60, MINUTE_MS)).toEqual({ minutes: 1, inbox: 120, replayed: 0 });
    // The same minute again: its row is updated (one row written), not doubled.
    expect(await written(3, MINUTE_MS + 100)).toEqual({ minutes: 1, inbox: 6, replayed: 0 });
    // What it reads grows with the events, not with their square (no event's rows are searched for each other one).
    const [few = 0, many = 0] = reads;
    expect(few).toBeGreaterThan(0);
    expect(many).toBeLessThan(2 * few);
    expect((await minuteRows(merchantId)).map((row) => row.ignored)).toEqual([5, 63]);
    const index = await db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'events_first_delivery'").all();
    expect(index.results).toEqual([]);
  });

  it("counts an event once when a write of more than 500 rows carries it in two of its statements", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const receivedAt = iso(Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 12 * MINUTE_MS);
    const twice = uniqueId("ev_twice");
    const statements = recordEvents([
      record(merchantId, twice, { receivedAt }),
      ...Array.from({ length: 499 }, () => record(merchantId, uniqueId("ev_many"), { receivedAt, outcome: "ignored" })),
      record(merchantId, twice, { receivedAt, outcome: "applied", now: iso(Date.parse(receivedAt) + 75) }),
    ]);
    // Two chunks of rows (500 a statement), each after its own count.
    expect(statements).toHaveLength(4);
    await runBatch(await dbFor(merchantId), statements);
    const shown = await expectSameAsInbox(merchantId, merchant.api_key);
    expect(shown.outcomes).toMatchObject({ pending: 0, applied: 1, ignored: 499 });
    expect(shown.lag_ms).toEqual({ p50: 75, p99: 75 });
  });

  it("counts nothing when the batch that carries the inbox write fails (one transaction)", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const db = await dbFor(merchantId);
    const receivedAt = iso(Date.now() - 5 * MINUTE_MS);
    await expect(
      runBatch(db, [
        ...recordEvents([record(merchantId, uniqueId("ev_f"), { receivedAt, outcome: "ignored" })]),
        // A later statement of the same batch fails (NOT NULL): the whole batch rolls back.
        sql`INSERT INTO pipeline_minutes (merchant_id, minute) VALUES (NULL, 'x')`,
      ]),
    ).rejects.toThrow(/NOT NULL/);
    expect(await minuteRows(merchantId)).toEqual([]);
    expect((await pipelineOf(merchant.api_key)).outcomes.ignored).toBe(0);
  });

  it("the write finds each event by the inbox's key and the minute's row by its own, scanning neither table", async () => {
    const shapes = [
      countFirstDeliveries({ rows: "[]", open: ["pending"] }),
      // The verified write's shape (inbox.ts recordVerifiedEvents): its join to the stored transaction.
      countFirstDeliveries({
        rows: "[]",
        open: ["pending", "rejected"],
        outcome: sql`CASE WHEN t.id IS NOT NULL THEN 'applied' ELSE 'stale' END`,
        join: sql`LEFT JOIN transactions AS t ON t.merchant_id = j.value ->> '$.merchant_id' AND t.id = j.value ->> '$.transaction_id'`,
      }),
    ];
    for (const shape of shapes) {
      const plan = await planText(shape, env.DB);
      expect(plan).toMatch(/SEARCH e USING PRIMARY KEY \(id=\? AND merchant_id=\?\)/);
      expect(plan).not.toMatch(/SCAN (e|events|pipeline_minutes|t)\b/);
    }
  });
});

describe("pipeline_minutes: a merchant's counts are its own (security)", () => {
  it("keeps A's first deliveries out of B's answer when one statement writes both in the same minute", async () => {
    const [a, b] = [await createMerchant(), await createMerchant()];
    const [shardA, shardB] = [await dbFor(a.merchant.id), await dbFor(b.merchant.id)];
    const receivedAt = iso(Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 7 * MINUTE_MS + 500);
    const records = [
      record(a.merchant.id, uniqueId("ev_s"), { receivedAt, outcome: "ignored" }),
      record(a.merchant.id, uniqueId("ev_s"), { receivedAt, outcome: "applied", now: iso(Date.parse(receivedAt) + 40) }),
      record(b.merchant.id, uniqueId("ev_s"), { receivedAt, outcome: "ignored" }),
    ];
    if (shardA === shardB) await runBatch(shardA, recordEvents(records));
    else {
      await runBatch(shardA, recordEvents(records.filter((r) => r.merchantId === a.merchant.id)));
      await runBatch(shardB, recordEvents(records.filter((r) => r.merchantId === b.merchant.id)));
    }
    const [ofA, ofB] = [await pipelineOf(a.api_key), await pipelineOf(b.api_key)];
    expect(ofA.outcomes).toMatchObject({ ignored: 1, applied: 1 });
    expect(ofA.lag_ms).toEqual({ p50: 40, p99: 40 });
    expect(ofB.outcomes).toEqual({ applied: 0, stale: 0, duplicate: 0, rejected: 0, pending: 0, ignored: 1 });
    expect(ofB.lag_ms).toEqual({ p50: null, p99: null });
    expect(ofB.deliveries_per_minute.reduce((sum, m) => sum + m.count, 0)).toBe(1);
  });
});

describe("migration 0032 counts the inbox's last day into pipeline_minutes", () => {
  it("answers what the inbox answered before, idempotently, and leaves a merchant being moved alone", async () => {
    const migration = env.TEST_MIGRATIONS.find((m) => m.name.startsWith("0032_"));
    const backfill = migration?.queries.find((q) => q.includes("INSERT INTO `pipeline_minutes`"));
    if (!backfill) throw new Error("0032 has no backfill statement");
    expect(migration?.queries.some((q) => q.includes("DROP INDEX IF EXISTS `events_first_delivery`"))).toBe(true);
    const [merchant, moving] = [await createMerchant(), await createMerchant()];
    const seeded = [merchant.merchant.id, moving.merchant.id];
    const now = Date.now();
    for (const merchantId of seeded) {
      // Inbox rows as code before 0032 left them: no minute rows of their own.
      const insert =
        "INSERT INTO events (merchant_id, id, outcome, first_received_at, processed_at, first_delivery_id) VALUES (?, ?, ?, ?, ?, ?)";
      const shard = await dbFor(merchantId);
      await shard.batch(
        [
          ["applied", 50 * MINUTE_MS, 1_500],
          ["applied", 50 * MINUTE_MS - 3_000, 700],
          ["pending", 49 * MINUTE_MS, null],
          ["stale", 20 * MINUTE_MS, 90],
          ["rejected", 10 * MINUTE_MS, 12],
          ["ignored", 2 * MINUTE_MS, 5],
        ].map(([outcome, ago, lag], n) => {
          const received = now - Number(ago);
          const processed = lag === null ? null : iso(received + Number(lag));
          return shard.prepare(insert).bind(merchantId, uniqueId(`ev_b${n}`), outcome, iso(received), processed, `d_${n}`);
        }),
      );
    }
    // Older than the day (and its hour): not counted, not read by any window.
    await (await dbFor(merchant.merchant.id))
      .prepare(
        "INSERT INTO events (merchant_id, id, outcome, first_received_at, processed_at, first_delivery_id) VALUES (?, ?, 'ignored', ?, ?, 'd_old')",
      )
      .bind(merchant.merchant.id, uniqueId("ev_old"), iso(now - (PIPELINE_MINUTES_KEPT_MINUTES + 5) * MINUTE_MS), iso(now))
      .run();
    const shardOfMoving = await dbFor(moving.merchant.id);
    await shardOfMoving
      .prepare("INSERT INTO move_marks (merchant_id, move_id, state) VALUES (?, 'mv_pm', 'tracking')")
      .bind(moving.merchant.id)
      .run();
    // Before the backfill, the minute rows know nothing of them.
    expect((await pipelineOf(merchant.api_key)).outcomes.applied).toBe(0);
    // Scoped to this test's merchants (the test files share the shards): the statement as the migration runs it otherwise.
    const scoped = backfill.replace("WHERE NOT EXISTS", "WHERE m.`id` IN (?, ?) AND NOT EXISTS");
    expect(scoped).not.toBe(backfill);
    for (const shard of SHARDS)
      for (let run = 0; run < 2; run += 1)
        await shard
          .prepare(scoped)
          .bind(...seeded)
          .run();
    await shardOfMoving.prepare("DELETE FROM move_marks WHERE merchant_id = ?").bind(moving.merchant.id).run();

    const shown = await expectSameAsInbox(merchant.merchant.id, merchant.api_key);
    expect(shown.outcomes).toEqual({ applied: 2, stale: 1, duplicate: 0, rejected: 1, pending: 1, ignored: 1 });
    expect(shown.lag_ms).toEqual({ p50: 700, p99: 1_500 });
    expect((await pipelineOf(merchant.api_key, "?window_minutes=1440")).outcomes.ignored).toBe(1);
    expect(await minuteRows(moving.merchant.id)).toEqual([]);
    // Written by code after it, on top of the backfilled rows: the pending event applied.
    const pending = await (await dbFor(merchant.merchant.id))
      .prepare("SELECT id, first_received_at FROM events WHERE merchant_id = ? AND outcome = 'pending'")
      .bind(merchant.merchant.id)
      .first<{ id: string; first_received_at: string }>();
    if (!pending) throw new Error("no pending event");
    await runBatch(await dbFor(merchant.merchant.id), [
      ...recordEvents([
        record(merchant.merchant.id, pending.id, {
          receivedAt: pending.first_received_at,
          outcome: "applied",
          now: iso(Date.parse(pending.first_received_at) + 300),
        }),
      ]),
    ]);
    const after = await expectSameAsInbox(merchant.merchant.id, merchant.api_key);
    expect(after.outcomes).toMatchObject({ applied: 3, pending: 0 });
    // An inbox row old code wrote after the backfill (no minute row), applied by new code: counted applied, never -1 pending.
    const gap = { id: uniqueId("ev_gap"), receivedAt: iso(now - 33 * MINUTE_MS) };
    const shard = await dbFor(merchant.merchant.id);
    await shard
      .prepare("INSERT INTO events (merchant_id, id, outcome, first_received_at, first_delivery_id) VALUES (?, ?, 'pending', ?, 'd_gap')")
      .bind(merchant.merchant.id, gap.id, gap.receivedAt)
      .run();
    await runBatch(shard, [
      ...recordEvents([
        record(merchant.merchant.id, gap.id, { receivedAt: gap.receivedAt, outcome: "applied", now: iso(now - 30 * MINUTE_MS) }),
      ]),
    ]);
    expect((await expectSameAsInbox(merchant.merchant.id, merchant.api_key)).outcomes).toMatchObject({ applied: 4, pending: 0 });
  });
});
