// `npm run test:scripts`: migration 0033 carries the refund scan's one shard-wide watermark over to one per merchant,
// exactly: every change the old scan had read stays read, every change it had not stays unread. The migrations up to
// 0032 are applied to an in-memory SQLite database (node:sqlite: D1 is SQLite), the old watermark and records are
// written, then 0033's statements run, and each merchant's records are compared as the old and the new scan order them.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const MIGRATIONS = fileURLToPath(new URL("../../migrations", import.meta.url));
const SCAN = "refund_scan";

/** Runs one migration file's statements, as wrangler applies them (split at drizzle's breakpoints). */
function migrate(db, file) {
  for (const statement of readFileSync(join(MIGRATIONS, file), "utf8").split("--> statement-breakpoint")) {
    if (statement.trim()) db.exec(statement);
  }
}

/** A database at the schema before 0033 (every earlier migration applied). */
function before0033() {
  const db = new DatabaseSync(":memory:");
  for (const file of readdirSync(MIGRATIONS)
    .filter((name) => name.endsWith(".sql"))
    .sort()) {
    if (file >= "0033_") break;
    migrate(db, file);
  }
  return db;
}

const file0033 = () => {
  const file = readdirSync(MIGRATIONS).find((name) => name.startsWith("0033_"));
  assert.ok(file, "migration 0033 exists");
  return file;
};

/** Inserts a row giving every NOT NULL column without a default a placeholder, then the values named. */
function insert(db, table, values) {
  const row = {};
  for (const column of db.prepare(`PRAGMA table_info("${table}")`).all()) {
    if (column.notnull && column.dflt_value === null) row[column.name] = column.type.toLowerCase() === "integer" ? 0 : "x";
  }
  Object.assign(row, values);
  const names = Object.keys(row);
  db.prepare(`INSERT INTO "${table}" (${names.map((n) => `"${n}"`).join(", ")}) VALUES (${names.map(() => "?").join(", ")})`).run(
    ...names.map((n) => row[n]),
  );
}

const T = "2026-12-01T10:00:00.000Z";
const EARLIER = "2026-12-01T09:00:00.000Z";
const LATER = "2026-12-01T11:00:00.000Z";

/**
 * Three merchants around the old watermark (T, m-b, tr_b2): m-a sorts before its merchant, m-b is it, m-c after it; each
 * has records before, at and after T, and m-d has none at T at all.
 */
function seed(db, watermark = { updatedAt: T, merchantId: "m-b", transactionId: "tr_b2" }) {
  for (const id of ["m-a", "m-b", "m-c", "m-d"]) insert(db, "merchants", { id, smart_router_project_id: `proj-${id}` });
  const records = {
    "m-a": [
      [EARLIER, "tr_a9"],
      [T, "tr_a1"],
      [T, "tr_a3"],
      [LATER, "tr_a0"],
    ],
    "m-b": [
      [EARLIER, "tr_b9"],
      [T, "tr_b1"],
      [T, "tr_b2"],
      [T, "tr_b3"],
      [LATER, "tr_b0"],
    ],
    "m-c": [
      [EARLIER, "tr_c9"],
      [T, "tr_c1"],
      [LATER, "tr_c0"],
    ],
    "m-d": [
      [EARLIER, "tr_d1"],
      [LATER, "tr_d2"],
    ],
  };
  for (const [merchantId, list] of Object.entries(records)) {
    for (const [updatedAt, id] of list) insert(db, "transactions", { merchant_id: merchantId, id, updated_at: updatedAt });
  }
  insert(db, "alert_scans", {
    name: SCAN,
    updated_at: watermark.updatedAt,
    merchant_id: watermark.merchantId,
    transaction_id: watermark.transactionId,
  });
  return { records, watermark };
}

/** The records the old scan had not read: past (updated_at, merchant_id, id) of its one watermark. */
function unreadBefore(records, { updatedAt, merchantId, transactionId }) {
  const past = (at, merchant, id) =>
    at > updatedAt || (at === updatedAt && (merchant > merchantId || (merchant === merchantId && id > transactionId)));
  return Object.fromEntries(
    Object.entries(records).map(([merchant, list]) => [
      merchant,
      list
        .filter(([at, id]) => past(at, merchant, id))
        .map(([, id]) => id)
        .sort(),
    ]),
  );
}

/** The records the new scan will read for each merchant: past its own (updated_at, transaction_id), as evaluate.ts's afterRow. */
function unreadAfter(db, merchants) {
  return Object.fromEntries(
    merchants.map((merchant) => [
      merchant,
      db
        .prepare(
          `SELECT t.id FROM transactions AS t JOIN alert_scans AS s ON s.merchant_id = t.merchant_id AND s.name = ?
           WHERE t.merchant_id = ? AND (t.updated_at, t.id) > (s.updated_at, s.transaction_id) ORDER BY t.id`,
        )
        .all(SCAN, merchant)
        .map((row) => row.id),
    ]),
  );
}

describe("migration 0033: the refund scan's watermark per merchant", () => {
  it("every merchant starts exactly where the shard-wide watermark stood (read stays read, unread stays unread)", () => {
    const db = before0033();
    const { records, watermark } = seed(db);
    const expected = unreadBefore(records, watermark);
    migrate(db, file0033());
    assert.deepEqual(unreadAfter(db, Object.keys(records)), expected);
    // The cases the CASE tells apart, spelled out: m-a read through its last record at T, m-b through tr_b2, m-c none at T.
    assert.deepEqual(expected, { "m-a": ["tr_a0"], "m-b": ["tr_b0", "tr_b3"], "m-c": ["tr_c0", "tr_c1"], "m-d": ["tr_d2"] });
  });

  it("writes one watermark per merchant and the row saying the scan has started, and none when no scan had started", () => {
    const db = before0033();
    seed(db);
    migrate(db, file0033());
    const rows = db.prepare("SELECT merchant_id, updated_at, transaction_id, scanned_at FROM alert_scans ORDER BY merchant_id").all();
    assert.deepEqual(
      rows.map((row) => row.merchant_id),
      ["", "m-a", "m-b", "m-c", "m-d"],
    );
    assert.ok(
      rows.every((row) => row.scanned_at === ""),
      "no merchant counts as read yet",
    );

    const fresh = before0033();
    insert(fresh, "merchants", { id: "m-a" });
    migrate(fresh, file0033());
    assert.equal(fresh.prepare("SELECT count(*) AS n FROM alert_scans").get().n, 0);
  });

  it("a watermark at a merchant's last record of the instant leaves the merchants after it unread at that instant", () => {
    const db = before0033();
    const { records, watermark } = seed(db, { updatedAt: T, merchantId: "m-c", transactionId: "tr_c1" });
    const expected = unreadBefore(records, watermark);
    migrate(db, file0033());
    assert.deepEqual(unreadAfter(db, Object.keys(records)), expected);
    assert.deepEqual(expected["m-b"], ["tr_b0"]);
    assert.deepEqual(expected["m-c"], ["tr_c0"]);
  });
});
