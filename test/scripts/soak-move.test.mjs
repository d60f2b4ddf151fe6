// The pure parts of `npm run soak -- --move` (scripts/bench/lib/soak-move.mjs).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

const { fencedRetries, fulfilmentDifferences, moveFigures, pickMerchantToMove, takeDue, truthDifferences } = await import(
  "../../scripts/bench/lib/soak-move.mjs"
);

describe("pickMerchantToMove", () => {
  it("picks the merchant with the most payments on any shard, with its shard", () => {
    const byShard = [
      [
        { merchant_id: "soak-00", n: 40 },
        { merchant_id: "soak-02", n: 41 },
      ],
      [{ merchant_id: "soak-01", n: 39 }],
    ];
    assert.deepEqual(pickMerchantToMove(byShard), { merchantId: "soak-02", shard: 0, payments: 41 });
    assert.deepEqual(pickMerchantToMove([[{ merchant_id: "a", n: 1 }], [{ merchant_id: "b", n: 2 }]]), {
      merchantId: "b",
      shard: 1,
      payments: 2,
    });
  });

  it("breaks a tie by the lowest id, and answers null when no shard holds a payment", () => {
    assert.equal(pickMerchantToMove([[{ merchant_id: "soak-05", n: 3 }], [{ merchant_id: "soak-03", n: 3 }]]).merchantId, "soak-03");
    assert.equal(pickMerchantToMove([[], []]), null);
  });
});

describe("moveFigures", () => {
  const job = {
    status: "completed",
    rows_copied: 1_000,
    started_at: "2026-12-07T08:00:00.000Z",
    fence_started_at: "2026-12-07T08:00:04.000Z",
    fence_ended_at: "2026-12-07T08:00:04.250Z",
    switched_at: "2026-12-07T08:00:04.200Z",
    finished_at: "2026-12-07T08:01:40.000Z",
  };

  it("measures the move, the copy up to the fence, rows a second, the fence and the cleaning from the job row", () => {
    assert.deepEqual(moveFigures(job), {
      status: "completed",
      rowsCopied: 1_000,
      moveSeconds: 100,
      toSwitchSeconds: 4.2,
      copySeconds: 4,
      rowsPerSecond: 250,
      fenceSeconds: 0.25,
      cleaningSeconds: 95.8,
    });
  });

  it("answers null for what a move that has not got there yet lacks", () => {
    const running = moveFigures({
      ...job,
      status: "copying",
      fence_started_at: null,
      fence_ended_at: null,
      switched_at: null,
      finished_at: null,
    });
    assert.equal(running.moveSeconds, null);
    assert.equal(running.copySeconds, null);
    assert.equal(running.rowsPerSecond, null);
    assert.equal(running.fenceSeconds, null);
  });
});

describe("truthDifferences", () => {
  const truth = [
    { id: "tr_1", status: "completed", currency: "EUR", amount: "10.00", captured_amount: "10.00" },
    { id: "tr_2", status: "failed", currency: "EUR", amount: "5", captured_amount: "0" },
  ];

  it("finds nothing when every field compared is equal", () => {
    assert.deepEqual(
      truthDifferences(
        truth.map((t) => ({ ...t, extra_column: 1 })),
        truth,
        ["status", "amount", "captured_amount"],
      ),
      [],
    );
  });

  it("names a differing field, a missing transaction and an extra one", () => {
    const stored = [
      { id: "tr_1", status: "authorized", currency: "EUR", amount: "10.00", captured_amount: "0" },
      { id: "tr_9", status: "completed" },
    ];
    assert.deepEqual(truthDifferences(stored, truth, ["status", "captured_amount"]), [
      { id: "tr_1", field: "status", stored: "authorized", truth: "completed" },
      { id: "tr_1", field: "captured_amount", stored: "0", truth: "10.00" },
      { id: "tr_2", field: "missing", stored: null, truth: "failed" },
      { id: "tr_9", field: "extra", stored: "completed", truth: null },
    ]);
  });

  it("compares decimal strings as strings: 10.0 is not 10.00", () => {
    assert.equal(truthDifferences([{ ...truth[0], amount: "10.0" }], [truth[0]], ["amount"]).length, 1);
  });
});

describe("fulfilmentDifferences", () => {
  it("wants one row per captured payment and none for the others", () => {
    const truth = [
      { id: "tr_1", captured: true },
      { id: "tr_2", captured: true },
      { id: "tr_3", captured: false },
    ];
    assert.deepEqual(
      fulfilmentDifferences(
        [
          { transaction_id: "tr_1", n: 1 },
          { transaction_id: "tr_3", n: 2 },
        ],
        truth,
      ),
      { missing: ["tr_2"], extra: ["tr_3"], duplicated: ["tr_3"] },
    );
    assert.deepEqual(
      fulfilmentDifferences(
        [
          { transaction_id: "tr_1", n: 1 },
          { transaction_id: "tr_2", n: 1 },
        ],
        truth,
      ),
      { missing: [], extra: [], duplicated: [] },
    );
  });
});

describe("fencedRetries", () => {
  const line = (fields) => JSON.stringify({ level: "error", time: "2026-12-07T08:00:00.000Z", ...fields });
  const fenced = "D1_ERROR: merchant_fenced: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_TRIGGER)";

  it("counts the messages of a webhook commit or a webhook queue part that met the fence", () => {
    assert.equal(fencedRetries(line({ message: "webhooks.batch_failed", messages: 48, error: fenced })), 48);
    assert.equal(
      fencedRetries(line({ message: "queue.shard_part_failed", queue: "smart-router-webhooks", messages: 7, error: fenced })),
      7,
    );
  });

  it("counts nothing for another failure, another queue, another line or a line that is not JSON", () => {
    assert.equal(fencedRetries(line({ message: "webhooks.batch_failed", messages: 48, error: "D1_ERROR: database is locked" })), 0);
    assert.equal(fencedRetries(line({ message: "queue.shard_part_failed", queue: "smart-router-batches", messages: 1, error: fenced })), 0);
    assert.equal(fencedRetries(line({ message: "move.step_failed", error: fenced })), 0);
    assert.equal(fencedRetries("merchant_fenced, but not a JSON line"), 0);
  });
});

describe("takeDue", () => {
  it("takes the due messages, oldest first and at most max, and keeps the rest in order", () => {
    const held = [{ dueAt: 5 }, { dueAt: 20 }, { dueAt: 1 }, { dueAt: 9 }];
    assert.deepEqual(takeDue(held, 10, 2), { due: [{ dueAt: 5 }, { dueAt: 1 }], rest: [{ dueAt: 20 }, { dueAt: 9 }] });
    assert.deepEqual(takeDue(held, 10), { due: [{ dueAt: 5 }, { dueAt: 1 }, { dueAt: 9 }], rest: [{ dueAt: 20 }] });
    assert.deepEqual(takeDue(held, 0), { due: [], rest: held });
  });
});
