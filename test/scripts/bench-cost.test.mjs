// The cost section's arithmetic (scripts/bench/cost.mjs): how metered counts become queue operations, index rows and dollars.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

const {
  costRows,
  indexCosts,
  marginalBytes,
  parkedDeliveries,
  parkingCost,
  observabilityEvents,
  price,
  RATES_FILE,
  STEADY_WAITING_LIMIT,
  steadyGateOpen,
  sumPhases,
  waitingDeliveries,
} = await import("../../scripts/bench/cost.mjs");
const { QUEUE_SHARE } = await import("../../src/ingest/backlog.ts");

const emptyPhase = () => ({
  invocations: 0,
  failedInvocations: 0,
  logLines: 0,
  d1: { calls: 0, statements: 0, rowsRead: 0, rowsWritten: 0, byStatement: {} },
  queueSends: {},
  queueReads: {},
  durableObjects: {},
  r2: {},
});

describe("sumPhases", () => {
  it("counts a message's write, its reads and the delete of an acked one; a dead-lettered message is also a write", () => {
    const consumer = {
      ...emptyPhase(),
      invocations: 2,
      queueSends: { FULFILLMENTS: { messages: 3, ops: 3, delayed: 1, kinds: {} } },
      queueReads: {
        "smart-router-webhooks": { batches: 2, messages: 10, ops: 10, acked: 9, retried: 1, attempts: 11 },
        "smart-router-webhooks-dlq": { batches: 1, messages: 1, ops: 1, acked: 1, retried: 0, attempts: 1 },
      },
      durableObjects: { RATE_LIMITER: { requests: 4, wallMs: 8, methods: { acquire: 2, observe: 2 } } },
      r2: { put: 2, list: 1, get: 3, head: 1, delete: 5 },
    };
    const total = sumPhases({ phases: { consumer, edge: { ...emptyPhase(), invocations: 10 } } });
    assert.equal(total.invocations, 12);
    assert.equal(total.queueWriteOps, 3 + 1);
    assert.equal(total.queueReadOps, 11);
    assert.equal(total.queueDeleteOps, 10);
    assert.equal(total.messagesRetried, 1);
    assert.equal(total.doRequests, 4);
    assert.deepEqual([total.r2ClassA, total.r2ClassB, total.r2Free], [3, 4, 5]);
    assert.equal(sumPhases({ phases: { consumer } }, ["edge"]).invocations, 0);
  });
});

describe("price", () => {
  it("prices each line at the rates file's marginal rate per million", () => {
    const rates = JSON.parse(readFileSync(RATES_FILE, "utf8"));
    const usage = {
      invocations: 1e6,
      cpuMs: 1e6,
      d1RowsRead: 1e6,
      d1RowsWritten: 1e6,
      queueWriteOps: 1e6,
      queueReadOps: 0,
      queueDeleteOps: 0,
      doRequests: 1e6,
      doWallMs: 0,
      doRowsRead: 0,
      doRowsWritten: 1e6,
      r2ClassA: 1e6,
      r2ClassB: 1e6,
      logLines: 0,
      d1Calls: 0,
      messagesSent: 0,
    };
    const { lines, total } = price(usage, rates, { logSampling: 1, invocationLogs: true, traceSampling: 0 });
    const r = rates.rates;
    assert.equal(lines.d1RowsWritten, r.d1.rowsWrittenPerMillion);
    assert.equal(lines.queues, r.queues.operationsPerMillion);
    assert.equal(lines.doStorage, r.durableObjects.sqliteRowsWrittenPerMillion);
    assert.equal(lines.r2, r.r2.classAPerMillion + r.r2.classBPerMillion);
    // Every invocation is also an invocation log event.
    assert.equal(lines.logs, r.workersLogs.eventsPerMillion);
    assert.equal(lines.traces, 0);
    assert.ok(Math.abs(total - Object.values(lines).reduce((sum, dollars) => sum + dollars, 0)) < 1e-12);
  });

  it("prices log events and trace spans as wrangler.toml samples them", () => {
    const usage = { invocations: 10, logLines: 4, d1Calls: 20, doRequests: 5, messagesSent: 3, r2ClassA: 1, r2ClassB: 1 };
    assert.deepEqual(observabilityEvents(usage, { logSampling: 1, invocationLogs: true, traceSampling: 0 }), { logs: 14, spans: 0 });
    assert.deepEqual(observabilityEvents(usage, { logSampling: 1, invocationLogs: false, traceSampling: 1 }), { logs: 4, spans: 40 });
    assert.deepEqual(observabilityEvents(usage, { logSampling: 0.5, invocationLogs: true, traceSampling: 0.25 }), { logs: 7, spans: 10 });
  });
});

describe("indexCosts", () => {
  const indexes = {
    t: { t_pk: { columns: ["id"], partial: false }, t_status: { columns: ["status", "at"], partial: false } },
  };
  it("charges every index for an inserted row, only the indexes holding a set column for an update, none for a delete", () => {
    const statements = [
      { key: "insert t", changes: 10, rowsWritten: 30 },
      { key: "update t set note", changes: 5, rowsWritten: 5 },
      { key: "update t set status", changes: 4, rowsWritten: 8 },
      { key: "delete t", changes: 2, rowsWritten: 2 },
      { key: "select t", changes: 0, rowsWritten: 0 },
    ];
    const [row] = indexCosts(statements, indexes, 1);
    assert.deepEqual(row.indexes, { t_pk: 10, t_status: 14 });
    assert.equal(row.measuredPerWebhook, 45);
    assert.equal(row.estimatedPerWebhook, 21 + 24);
  });
});

/** A phase with the given D1 statements (`key: [changes, rowsWritten, rowsRead]`). */
const withStatements = (phase, statements) => ({
  ...phase,
  d1: {
    ...phase.d1,
    byStatement: Object.fromEntries(
      Object.entries(statements).map(([key, [changes, rowsWritten, rowsRead = 0]]) => [
        key,
        { statements: 1, changes, rowsWritten, rowsRead },
      ]),
    ),
  },
});

describe("waitingDeliveries", () => {
  it("counts sent webhook messages not acked nor dead-lettered, plus deliveries parked and not yet deleted", () => {
    const edge = withStatements(
      {
        ...emptyPhase(),
        queueSends: {
          WEBHOOKS: { messages: 120, ops: 120, delayed: 0, kinds: {} },
          FULFILLMENTS: { messages: 50, ops: 50, delayed: 0, kinds: {} },
        },
      },
      { "insert parked_deliveries set claimed_until": [30, 90] },
    );
    const consumer = withStatements(
      {
        ...emptyPhase(),
        queueReads: {
          "smart-router-webhooks": { batches: 2, messages: 100, ops: 100, acked: 90, retried: 10, attempts: 100 },
          "smart-router-webhooks-dlq": { batches: 1, messages: 5, ops: 5, acked: 5, retried: 0, attempts: 5 },
          "smart-router-fulfillments": { batches: 1, messages: 40, ops: 40, acked: 40, retried: 0, attempts: 40 },
        },
      },
      { "delete parked_deliveries": [12, 12] },
    );
    // 120 sent − 90 acked − 5 dead-lettered; 30 parked − 12 deleted. The fulfilment queue is not the merchant's webhooks.
    assert.equal(waitingDeliveries({ phases: { edge, consumer } }), 25 + 18);
    assert.equal(waitingDeliveries({ phases: {} }), 0);
  });
});

describe("steadyGateOpen", () => {
  it("keeps the waiting deliveries, those on their way and the payments in flight under half the queue share", () => {
    assert.equal(STEADY_WAITING_LIMIT, QUEUE_SHARE / 2);
    assert.equal(steadyGateOpen({ waiting: 0, coming: 0, inFlight: 0 }), true);
    // One more payment counts 4 webhooks: 20 in flight + 1 → 84 ≤ 100 with 16 waiting; 17 waiting would pass it.
    assert.equal(steadyGateOpen({ waiting: 16, coming: 0, inFlight: 20 }), true);
    assert.equal(steadyGateOpen({ waiting: 17, coming: 0, inFlight: 20 }), false);
    assert.equal(steadyGateOpen({ waiting: 10, coming: 7, inFlight: 20 }), false);
    assert.equal(steadyGateOpen({ waiting: STEADY_WAITING_LIMIT, coming: 0, inFlight: 0 }), false);
  });
});

describe("parkingCost", () => {
  it("charges a parked delivery its parking's statements and wake-up messages, nothing else", () => {
    const rates = JSON.parse(readFileSync(RATES_FILE, "utf8"));
    const edge = withStatements(
      { ...emptyPhase(), queueSends: { WEBHOOKS: { messages: 3, ops: 3, delayed: 2, kinds: { message: 1, resume_parked: 2 } } } },
      {
        "insert parked_deliveries set claimed_until": [100, 300, 200],
        "insert parked_wakeups set due_at": [2, 4, 100],
        "insert events set count": [50, 400, 50],
      },
    );
    const consumer = withStatements(emptyPhase(), {
      "update parked_deliveries set claimed_until": [100, 100, 700],
      "delete parked_deliveries": [100, 100, 500],
      "delete parked_wakeups": [2, 2, 4],
    });
    const meter = { phases: { edge, consumer } };
    assert.equal(parkedDeliveries(meter), 100);
    const cost = parkingCost(meter, rates);
    assert.equal(cost.rowsWritten, 300 + 4 + 100 + 100 + 2);
    assert.equal(cost.rowsRead, 200 + 100 + 700 + 500 + 4);
    assert.equal(cost.wakeups, 2);
    assert.equal(cost.rowsWrittenPerParked, 5.06);
    const r = rates.rates;
    const dollars = (506 * r.d1.rowsWrittenPerMillion + 1504 * r.d1.rowsReadPerMillion + 6 * r.queues.operationsPerMillion) / 1e6;
    assert.ok(Math.abs(cost.dollarsPerMillionParked - (dollars / 100) * 1e6) < 1e-9);
    assert.equal(parkingCost({ phases: { consumer: emptyPhase() } }, rates).rowsWrittenPerParked, null);
  });
});

describe("marginalBytes", () => {
  it("takes the empty schema's pages out of bytes per payment, per table, and reports them as the fixed overhead", () => {
    const empty = {
      tables: {
        transactions: { bytes: 8192, rows: 0 },
        parked_deliveries: { bytes: 8192, rows: 0 },
        merchants: { bytes: 4096, rows: 1 },
        sqlite_schema: { bytes: 40960, rows: 0 },
      },
    };
    const after = {
      bytes: 1_008_192 + 8192 + 4096,
      tables: [
        { table: "transactions", rows: 1000, bytes: 1_008_192 },
        { table: "parked_deliveries", rows: 0, bytes: 8192 },
        { table: "merchants", rows: 1, bytes: 4096 },
      ],
    };
    const bytes = marginalBytes(after, empty, 1000);
    assert.equal(bytes.bytesPerPayment, 1000);
    assert.equal(bytes.grossBytesPerPayment, 1020.48);
    assert.equal(bytes.fixedBytes, 8192 + 8192 + 4096);
    assert.equal(bytes.fixedBytesPerPayment, 20.48);
    assert.deepEqual(
      bytes.tables.map((t) => [t.table, t.bytesPerPayment]),
      [
        ["transactions", 1000],
        ["merchants", 0],
        ["parked_deliveries", 0],
      ],
    );
  });
});

describe("costRows", () => {
  const cost = {
    payments: 500,
    webhooks: 1563,
    steady: { waitingLimit: 100, webhookBatches: { batches: 16, meanSize: 97.7 } },
    outboundCalls: { smartRouter: 111, fulfilment: 373 },
    bill: {
      rates: { taken: "2026-12-07" },
      dollarsPerMillionWebhooks: 21.5,
      dollarsPerMillionPayments: 67.2,
      linesPerMillionWebhooks: {
        d1RowsWritten: 17,
        d1RowsRead: 0.1,
        queues: 1,
        doRequests: 1,
        doDuration: 0,
        doStorage: 1,
        workersRequests: 0.3,
        workersCpu: 0.1,
        logs: 1.4,
        traces: 0.02,
        r2: 0,
      },
      idleCronDollarsPerMonth: 0.7,
      d1StoragePerMonthPerMillionPaymentsKept: 1.1,
    },
    perWebhook: {
      d1RowsWritten: 17,
      d1RowsRead: 90,
      messagesSent: 1.1,
      queueWriteOps: 1,
      queueReadOps: 1,
      queueDeleteOps: 1,
      doRequests: 3,
      doRowsWritten: 3,
      invocations: 1,
      cpuMs: 6,
      logLines: 1,
      d1Calls: 1,
      r2ClassA: 0,
      r2ClassB: 0,
    },
    perPayment: { r2ClassA: 0.01, r2ClassB: 0.01 },
    retention: { days: 30 },
    bytesPerPaymentAfterRetention: 1470,
    grossBytesPerPaymentAfterRetention: 1800,
    fixedBytesAfterRetention: { bytes: 165_000, perPayment: 330 },
    burst: {
      payments: 200,
      webhooks: 630,
      parkedDeliveries: 420,
      parkedShare: 420 / 630,
      perWebhook: { d1RowsWritten: 20.4 },
      bill: { dollarsPerMillionWebhooks: 25.1 },
      overSteady: { dollarsPerMillionWebhooks: 3.6 },
      parking: { parked: 420, rowsWrittenPerParked: 5.06, dollarsPerMillionParked: 5.2 },
    },
  };
  it("heads with the steady figures, the marginal bytes and the fixed pages apart, then the burst labelled as such", () => {
    const rows = costRows(cost);
    assert.match(rows[0][1], /STEADY/);
    assert.deepEqual(rows[0].slice(2), ["$21.50 · $67.20 per million payments", "≤ $10", "MISSED"]);
    assert.equal(
      rows.find((row) => /Smart Router calls per webhook/.test(row[1]))[2],
      "0.07 (webhook batches of 97.7 messages on average)",
    );
    const bytes = rows.find((row) => /bytes per payment after retention/.test(row[1]));
    assert.deepEqual(bytes.slice(2, 5), ["1,470 B · $1.10 per month per million payments kept", "≤ 1,000 B", "MISSED"]);
    assert.match(rows[rows.indexOf(bytes) + 1][2], /^161 KB \(330 B a payment at 500; 1,800 B with it\)$/);
    const burst = rows.find((row) => /^BURST, not the headline/.test(row[1]));
    assert.match(burst[1], /420 parked, 67 %/);
    assert.match(burst[2], /^\$25\.10 per million webhooks \(\+\$3\.60 over steady/);
    assert.equal(rows.at(-1)[2], "+5.06 D1 rows written · +$5.20 per million parked deliveries");
  });
  it("names the reading the steady phase ran under, and none for the default", () => {
    assert.doesNotMatch(costRows(cost)[0][1], /reading/);
    assert.doesNotMatch(costRows({ ...cost, reading: "default" })[0][1], /reading/);
    assert.match(
      costRows({ ...cost, reading: "list-no-data" })[0][1],
      /^per million webhooks, STEADY \(.*demo mix, reading list-no-data, paced/,
    );
  });
  it("has no burst rows without a burst phase, and meets the bytes target at 1,000 B", () => {
    const rows = costRows({ ...cost, burst: null, bytesPerPaymentAfterRetention: 1000 });
    assert.equal(rows.filter((row) => /BURST|parked during a flood/.test(row[1])).length, 0);
    assert.equal(rows.find((row) => /bytes per payment after retention/.test(row[1]))[4], "met");
  });
});
