// The streams check of `npm run chaos` (scripts/lib-streams.mjs): what makes it pass, and bad streams it must catch.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

const { filterProblems, outOfOrder, receiptsOf, replayProblems, replayRange, streamChecks, streamProblems } = await import(
  "../../scripts/lib-streams.mjs"
);

let clock = Date.parse("2026-12-01T10:00:00.000Z");
/** One sink request of a message, as the emulator records it (`answered`: the sink's status). */
function post({ id, tx = "tr_1", type, sequence, previous = null, status, answered = 200 }) {
  clock += 10;
  const json = {
    type,
    timestamp: new Date(clock).toISOString(),
    data: { merchant_id: "m", sequence, previous_status: previous, transaction: { id: tx, status } },
  };
  return { received_at: new Date(clock).toISOString(), headers: { "webhook-id": id }, body: JSON.stringify(json), json, answered };
}

/** A card paid: authorized (1) → completed (2) with its captured message → refunded (3). */
const paid = (tx = "tr_1", prefix = "a") => [
  post({ id: `${prefix}1`, tx, type: "transaction.authorized", sequence: 1, status: "authorized" }),
  post({ id: `${prefix}2`, tx, type: "transaction.completed", sequence: 2, previous: "authorized", status: "completed" }),
  post({ id: `${prefix}c`, tx, type: "transaction.captured", sequence: 2, previous: "authorized", status: "completed" }),
  post({ id: `${prefix}3`, tx, type: "transaction.refunded", sequence: 3, previous: "completed", status: "refunded" }),
];
const changesOf = (tx = "tr_1") =>
  new Map([
    [
      tx,
      [
        { sequence: 1, previous_status: null, status: "authorized" },
        { sequence: 2, previous_status: "authorized", status: "completed" },
        { sequence: 3, previous_status: "completed", status: "refunded" },
      ],
    ],
  ]);
const truth = new Map([["tr_1", "refunded"]]);
const captured = new Set(["tr_1"]);
const noProblems = { notReproduced: [], notOnTruth: [], capturedNotOnce: [] };

describe("streamProblems", () => {
  it("passes a stream that reproduces the changes, ends on the truth and announces the capture once", () => {
    assert.deepEqual(streamProblems({ receipts: receiptsOf(paid()), changes: changesOf(), truth, captured }), noProblems);
  });

  it("passes a retried message (first attempt 503, the same webhook-id 200 before the next)", () => {
    const [first, ...rest] = paid();
    const receipts = receiptsOf([{ ...first, answered: 503 }, first, ...rest]);
    assert.deepEqual(streamProblems({ receipts, changes: changesOf(), truth, captured }), noProblems);
    assert.deepEqual(outOfOrder(receipts), []);
  });

  it("catches a missing change, a wrong previous_status, a stream ending elsewhere", () => {
    const [a, b, c] = paid();
    assert.deepEqual(streamProblems({ receipts: receiptsOf([a, b, c]), changes: changesOf(), truth, captured }), {
      notReproduced: ["tr_1"],
      notOnTruth: ["tr_1"],
      capturedNotOnce: [],
    });
    const wrongPrevious = paid();
    wrongPrevious[3] = post({ id: "a3", type: "transaction.refunded", sequence: 3, previous: "authorized", status: "refunded" });
    assert.deepEqual(streamProblems({ receipts: receiptsOf(wrongPrevious), changes: changesOf(), truth, captured }).notReproduced, [
      "tr_1",
    ]);
    // Received in another order than the changes: 2 before 1.
    const [m1, m2, mc, m3] = paid();
    assert.deepEqual(streamProblems({ receipts: receiptsOf([m2, m1, mc, m3]), changes: changesOf(), truth, captured }).notReproduced, [
      "tr_1",
    ]);
    // A transaction of the truth that got nothing.
    const moreTruth = new Map([...truth, ["tr_2", "failed"]]);
    const none = streamProblems({ receipts: receiptsOf(paid()), changes: changesOf(), truth: moreTruth, captured });
    assert.deepEqual(none.notOnTruth, ["tr_2"]);
  });

  it("catches transaction.captured twice, missing, or for a transaction never captured", () => {
    const twice = [...paid(), post({ id: "ac2", type: "transaction.captured", sequence: 3, previous: "completed", status: "refunded" })];
    assert.deepEqual(streamProblems({ receipts: receiptsOf(twice), changes: changesOf(), truth, captured }).capturedNotOnce, ["tr_1"]);
    const missing = paid().filter((r) => r.json.type !== "transaction.captured");
    assert.deepEqual(streamProblems({ receipts: receiptsOf(missing), changes: changesOf(), truth, captured }).capturedNotOnce, ["tr_1"]);
    assert.deepEqual(streamProblems({ receipts: receiptsOf(paid()), changes: changesOf(), truth, captured: new Set() }).capturedNotOnce, [
      "tr_1",
    ]);
  });
});

describe("outOfOrder", () => {
  it("catches n+1 sent while n was answered 503 and not yet retried", () => {
    const [first, second, ...rest] = paid();
    const receipts = receiptsOf([{ ...first, answered: 503 }, second, first, ...rest]);
    // The early n+1, and n's retry that came after it.
    assert.deepEqual(
      outOfOrder(receipts).map((r) => r.id),
      ["a2", "a1"],
    );
  });

  it("catches a message received again after a later one", () => {
    const list = paid();
    assert.deepEqual(
      outOfOrder(receiptsOf([...list, list[1]])).map((r) => r.id),
      ["a2"],
    );
  });

  it("lets transactions interleave: lanes are per transaction", () => {
    const one = paid("tr_1", "a");
    const two = paid("tr_2", "b");
    assert.deepEqual(outOfOrder(receiptsOf([one[0], two[0], two[1], one[1], one[2], two[2], two[3], one[3]])), []);
  });
});

describe("filterProblems", () => {
  const events = ["transaction.captured", "transaction.refunded"];
  const all = receiptsOf(paid());
  const filtered = (list) =>
    receiptsOf(
      list.filter((r) => events.includes(r.json.type)).map((r) => ({ ...r, headers: { "webhook-id": `f${r.headers["webhook-id"]}` } })),
    );

  it("passes an endpoint that got exactly its types", () => {
    assert.deepEqual(filterProblems({ all, some: filtered(paid()), events }), { foreign: 0, missing: 0, extra: 0 });
  });

  it("catches a type it did not subscribe to, and one of its messages missing", () => {
    const some = [
      ...filtered(paid()),
      ...receiptsOf([post({ id: "fx", type: "transaction.authorized", sequence: 1, status: "authorized" })]),
    ];
    assert.deepEqual(filterProblems({ all, some, events }), { foreign: 1, missing: 0, extra: 1 });
    assert.deepEqual(filterProblems({ all, some: filtered(paid()).slice(1), events }), { foreign: 0, missing: 1, extra: 0 });
  });
});

describe("replayProblems", () => {
  const original = paid();
  const expected = [
    { id: "a2", transaction_id: "tr_1", position: 4 },
    { id: "ac", transaction_id: "tr_1", position: 5 },
  ];

  it("passes a replay that resent exactly the range, with the same ids and bodies, in order", () => {
    const resent = receiptsOf([original[1], original[2]]);
    assert.deepEqual(replayProblems({ expected, resent, original: receiptsOf(original) }), {
      notResent: 0,
      notInRange: 0,
      twice: 0,
      otherBody: 0,
      misordered: 0,
    });
  });

  it("catches a message left out, one from outside the range, a new id, twice, out of order, another body", () => {
    const check = (list) => replayProblems({ expected, resent: receiptsOf(list), original: receiptsOf(original) });
    assert.equal(check([original[1]]).notResent, 1);
    assert.equal(check([original[1], original[2], original[3]]).notInRange, 1);
    assert.deepEqual(check([original[1], { ...original[2], headers: { "webhook-id": "new" } }]).notResent, 1);
    assert.equal(check([original[1], original[2], original[2]]).twice, 1);
    assert.equal(check([original[2], original[1]]).misordered, 1);
    assert.equal(check([original[1], { ...original[2], body: "{}" }]).otherBody, 1);
  });
});

describe("streamChecks", () => {
  const endpoint = (name, list, events) => ({
    name,
    events,
    receipts: receiptsOf(list),
    stored: receiptsOf(list).map((r) => ({ id: r.id })),
  });
  const some = (list) =>
    list
      .filter((r) => r.json.type === "transaction.captured")
      .map((r) => ({ ...r, headers: { "webhook-id": `f${r.headers["webhook-id"]}` } }));

  it("every row passes on a good run, and a broken stream fails rows", () => {
    const good = streamChecks({
      all: endpoint("*", paid(), ["*"]),
      some: endpoint("filtered", some(paid()), ["transaction.captured"]),
      changes: changesOf(),
      truth,
      captured,
      replay: null,
    });
    assert.ok(
      good.rows.every((row) => String(row.expected) === String(row.found)),
      JSON.stringify(good.rows),
    );

    const [first, ...rest] = paid();
    const bad = streamChecks({
      all: { ...endpoint("*", [...rest, first], ["*"]), stored: [...receiptsOf(paid()).map((r) => ({ id: r.id })), { id: "never" }] },
      some: endpoint("filtered", some(paid()), ["transaction.captured"]),
      changes: changesOf(),
      truth,
      captured,
      replay: null,
    });
    const failing = bad.rows.filter((row) => String(row.expected) !== String(row.found)).map((row) => row.check.trim());
    assert.ok(
      failing.some((c) => c.includes("reproduce")),
      failing.join("; "),
    );
    assert.ok(
      failing.some((c) => c.includes("out of order")),
      failing.join("; "),
    );
    assert.ok(
      failing.some((c) => c.includes("never answered 2xx")),
      failing.join("; "),
    );
  });
});

describe("replayRange", () => {
  const at = (second) => ({ created_at: `2026-12-07T09:00:${String(second).padStart(2, "0")}.000Z` });

  it("takes the middle fifth, ending at the first message created later than its start", () => {
    const own = Array.from({ length: 10 }, (_, i) => at(i));
    assert.deepEqual(replayRange(own), { since: at(4).created_at, until: at(6).created_at });
  });

  it("never answers an empty range when the slice's ends share one created_at (one D1 batch)", () => {
    const own = [at(1), at(1), at(2), at(2), at(2), at(2), at(2), at(2), at(2), at(3)];
    const range = replayRange(own);
    assert.ok(range && range.since < range.until, JSON.stringify(range));
    assert.deepEqual(range, { since: at(2).created_at, until: at(3).created_at });
  });

  it("answers null when nothing was created after the slice's start", () => {
    assert.equal(replayRange([at(1), at(1), at(1)]), null);
    assert.equal(replayRange([]), null);
  });
});
