// The cost section's arithmetic (scripts/bench/cost.mjs): how metered counts become queue operations, index rows and dollars.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

const { indexCosts, price, RATES_FILE, sumPhases } = await import("../../scripts/bench/cost.mjs");

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
    };
    const { lines, total } = price(usage, rates);
    const r = rates.rates;
    assert.equal(lines.d1RowsWritten, r.d1.rowsWrittenPerMillion);
    assert.equal(lines.queues, r.queues.operationsPerMillion);
    assert.equal(lines.doStorage, r.durableObjects.sqliteRowsWrittenPerMillion);
    assert.equal(lines.r2, r.r2.classAPerMillion + r.r2.classBPerMillion);
    // Every invocation is also an invocation log event.
    assert.equal(lines.logs, r.workersLogs.eventsPerMillion);
    assert.ok(Math.abs(total - Object.values(lines).reduce((sum, dollars) => sum + dollars, 0)) < 1e-12);
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
