import { createExecutionContext, createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import {
  alerts,
  batches,
  batchUnits,
  deadLetters,
  endpointMessages,
  endpoints,
  events,
  fetchBacks,
  fulfillmentAttempts,
  pipelineMinutes,
  reconciliationRuns,
  transactionChanges,
  transactionStatusChanges,
  transactionStreams,
  webhookDeliveries,
} from "../../../src/db/schema";
import { endpointSecretContext } from "../../../src/endpoints/secrets";
import { appConfig } from "../../../src/env";
import worker from "../../../src/index";
import { BATCH_UNITS_KEPT_DAYS, PRUNED_PER_TABLE_PER_RUN, pipelineMinutesFrom, pruneBookkeeping } from "../../../src/retention/prune";
import { runRetention } from "../../../src/retention/retention";
import { sealSecret } from "../../../src/security/vault";
import { createMerchant } from "../../support/fixtures";
import { shardedDb } from "../../support/shards";
import { db, dbOfMerchant, seedEvent, seedOperation, seedTransaction } from "../../support/status-api";
import { ledger, rowsInD1 } from "./support";

/**
 * The test files share one D1 database and every run prunes every merchant's rows, so these runs are dated 1985, before
 * anything another test stores (the other cron tests date theirs 1990 and 2001): they find only the rows seeded here.
 */
const NOW = Date.parse("1985-06-01T00:00:00.000Z");
const DAY_MS = 86_400_000;
const daysAgo = (days: number, from = NOW) => new Date(from - days * DAY_MS).toISOString();
const RETENTION_DAYS = 30;

/** One row of every pruned table for the merchant, written `days` days before NOW; ids carry `tag`. */
async function seedBookkeeping(merchantId: string, tag: string, days: number) {
  const at = daysAgo(days);
  const db = await dbOfMerchant(merchantId);
  await db.batch([
    db.insert(batchUnits).values({ unitId: `unit_${tag}`, batchId: null, finishedAt: at }),
    db.insert(reconciliationRuns).values({ id: `rec_${tag}`, startedAt: at }),
    db.insert(deadLetters).values({ id: `dl_${tag}`, queue: "smart-router-webhooks", merchantId, body: {}, attempts: 1, createdAt: at }),
    db.insert(events).values({
      merchantId,
      id: `ev_ignored_${tag}`,
      name: "customer.created",
      transactionId: null,
      outcome: "ignored",
      firstReceivedAt: at,
      processedAt: at,
    }),
    db.insert(webhookDeliveries).values({ merchantId, eventId: `ev_${tag}`, deliveryId: `d_${tag}`, receivedAt: at, duplicate: false }),
    db.insert(fetchBacks).values({ merchantId, eventId: `ev_${tag}`, at, outcome: "verified", via: "event", apiCalls: 1, paceWaitMs: 0 }),
    db.insert(transactionStatusChanges).values({ merchantId, transactionId: `tr_${tag}`, at, toStatus: "completed" }),
    db.insert(fulfillmentAttempts).values({ merchantId, transactionId: `tr_${tag}`, attempt: 1, at, outcome: "delivered" }),
    db.insert(batches).values(finishedBatch(merchantId, `batch_${tag}`, at)),
    db.insert(alerts).values(resolvedAlert(merchantId, `alert_${tag}`, at)),
    db.insert(endpoints).values(await endpointRow(merchantId, `ep_${tag}`)),
    db.insert(endpointMessages).values(message({ merchantId, endpointId: `ep_${tag}`, id: `msg_${tag}`, transactionId: `trc_${tag}`, at })),
    db.insert(transactionStreams).values({ merchantId, transactionId: `trc_${tag}`, sequence: 1, status: "completed", captured: true }),
    db.insert(transactionChanges).values(change({ merchantId, transactionId: `trc_${tag}`, sequence: 1, status: "completed", at })),
    db.insert(pipelineMinutes).values({ merchantId, minute: at.slice(0, 16), applied: 1, lags: "[5]" }),
  ]);
}

/**
 * An endpoint row as the API stores it, its secret sealed under the current key: the test files share the database, and
 * the re-seal job (admin/secret-rotation.test.ts) opens every endpoint's secret it finds.
 */
async function endpointRow(merchantId: string, id: string, status: "enabled" | "paused" = "enabled") {
  const sealed = await sealSecret(appConfig(env), "whsec_cHJ1bmUtdGVzdA==", endpointSecretContext(merchantId, id));
  return {
    id,
    merchantId,
    url: "https://orders.example.com/hooks",
    events: ["*"],
    status,
    secretCiphertext: sealed.ciphertext,
    secretKeyId: sealed.keyId,
  };
}

/** A pending message's next attempt: never due, so no other file's cron run nudges these lanes and tries to deliver. */
const NEVER_DUE = "9999-12-31T00:00:00.000Z";

/** A message of change `sequence` (or the `transaction.captured` after it) created at `at`, settled as `status`. */
function message({
  merchantId,
  endpointId,
  id,
  transactionId,
  at,
  sequence = 1,
  captured = false,
  status = "delivered",
}: {
  merchantId: string;
  endpointId: string;
  id: string;
  transactionId: string;
  at: string;
  sequence?: number;
  captured?: boolean;
  status?: "pending" | "delivered" | "failed";
}) {
  const type = captured ? "transaction.captured" : "transaction.completed";
  const position = 2 * sequence + (captured ? 1 : 0);
  const nextAttemptAt = status === "pending" ? NEVER_DUE : at;
  return { id, merchantId, endpointId, transactionId, sequence, position, type, status, nextAttemptAt, createdAt: at };
}

/** A stored change of a transaction, made at `at`. */
function change({
  merchantId,
  transactionId,
  sequence,
  status,
  at,
}: {
  merchantId: string;
  transactionId: string;
  sequence: number;
  status: string;
  at: string;
}) {
  return { merchantId, transactionId, sequence, previousStatus: null, status, record: "{}", createdAt: at };
}

/** A sync batch that completed at `at` (created an hour before). */
function finishedBatch(merchantId: string, id: string, at: string, status: "completed" | "running" = "completed") {
  const created = new Date(Date.parse(at) - 3_600_000).toISOString();
  return { id, merchantId, kind: "sync" as const, status, params: {}, createdAt: created, finishedAt: status === "running" ? null : at };
}

/** An alert opened a day before `at` and resolved at `at` (or still open), its notification as given. */
function resolvedAlert(
  merchantId: string,
  id: string,
  at: string,
  {
    state = "resolved",
    notificationStatus = "delivered",
  }: { state?: "open" | "resolved"; notificationStatus?: "pending" | "delivered" | null } = {},
) {
  const opened = new Date(Date.parse(at) - DAY_MS).toISOString();
  return {
    id,
    merchantId,
    kind: "fulfillment_failing",
    transactionId: `tr_${id}`,
    state,
    detail: "{}",
    openedAt: opened,
    resolvedAt: state === "resolved" ? at : null,
    checkedAt: at,
    notificationStatus,
  };
}

/** Timeline rows of a record, never pruned: they leave D1 with its history (0027); seedBookkeeping writes them orphaned. */
const RECORD_OWNED = ["transaction_status_changes", "fulfillment_attempts"];

/** Which of `tags` (as seedBookkeeping wrote them) are still there, per table. */
async function remaining(tags: string[]) {
  const present = async (table: string, column: string, prefix: string) => {
    const ids = JSON.stringify(tags.map((tag) => `${prefix}${tag}`));
    const { results } = await shardedDb
      .prepare(`SELECT ${column} AS id FROM ${table} WHERE ${column} IN (SELECT value FROM json_each(?))`)
      .bind(ids)
      .all<{ id: string }>();
    return tags.filter((tag) => results.some((row) => row.id === `${prefix}${tag}`));
  };
  return {
    batch_units: await present("batch_units", "unit_id", "unit_"),
    reconciliation_runs: await present("reconciliation_runs", "id", "rec_"),
    dead_letters: await present("dead_letters", "id", "dl_"),
    ignored_events: await present("events", "id", "ev_ignored_"),
    webhook_deliveries: await present("webhook_deliveries", "delivery_id", "d_"),
    fetch_backs: await present("fetch_backs", "event_id", "ev_"),
    transaction_status_changes: await present("transaction_status_changes", "transaction_id", "tr_"),
    fulfillment_attempts: await present("fulfillment_attempts", "transaction_id", "tr_"),
    batches: await present("batches", "id", "batch_"),
    alerts: await present("alerts", "id", "alert_"),
    endpoint_messages: await present("endpoint_messages", "id", "msg_"),
    transaction_changes: await present("transaction_changes", "transaction_id", "trc_"),
  };
}

describe("retention: bookkeeping rows are pruned past their windows", () => {
  it("deletes what is older than its window and keeps what is younger, table by table", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const db = await dbOfMerchant(merchantId);
    const [old, young, fresh] = ["old", "young", "fresh"].map((age) => `${age}_${merchantId}`) as [string, string, string];
    await seedBookkeeping(merchantId, old, RETENTION_DAYS + 1);
    await seedBookkeeping(merchantId, young, RETENTION_DAYS - 1);
    // Batch units have their own, shorter window: a unit younger than it stays.
    await db.insert(batchUnits).values({ unitId: `unit_${fresh}`, batchId: null, finishedAt: daysAgo(BATCH_UNITS_KEPT_DAYS - 1) });
    // The pipeline's minute rows have theirs (a day and an hour, whatever RETENTION_DAYS is): its first minute stays.
    const keptFrom = pipelineMinutesFrom(NOW);
    const minuteBefore = new Date(Date.parse(`${keptFrom}:00.000Z`) - 60_000).toISOString().slice(0, 16);
    await db.insert(pipelineMinutes).values([
      { merchantId, minute: keptFrom },
      { merchantId, minute: minuteBefore },
    ]);
    // A rejected row is the forged-delivery step's (7 days), and an applied one is a transaction's history: neither goes.
    await seedEvent({ merchantId, transactionId: "tr_kept", id: "ev_applied_old", processedAt: daysAgo(400) });
    await db.insert(events).values({
      merchantId,
      id: "ev_rejected_old",
      transactionId: null,
      outcome: "rejected",
      firstReceivedAt: daysAgo(400),
      processedAt: daysAgo(400),
    });

    const pruned = await pruneBookkeeping({ db, now: NOW, retentionDays: RETENTION_DAYS });
    for (const count of Object.values(pruned)) expect(count).toBeGreaterThanOrEqual(1);
    expect(await remaining([old, young, fresh])).toEqual({
      batch_units: [fresh],
      reconciliation_runs: [young],
      // Dead letters are not pruned: the retention step archives them to R2 (archive-pages.test.ts).
      dead_letters: [old, young],
      ignored_events: [young],
      webhook_deliveries: [young],
      fetch_backs: [young],
      // Never pruned (0027): a record's status changes and fulfilment attempts leave D1 with its history, to R2.
      transaction_status_changes: [old, young],
      fulfillment_attempts: [old, young],
      batches: [young],
      alerts: [young],
      endpoint_messages: [young],
      transaction_changes: [young],
    });
    const kept = await shardedDb
      .prepare("SELECT id FROM events WHERE merchant_id = ? AND outcome IN ('applied', 'rejected') ORDER BY id")
      .bind(merchantId)
      .all<{ id: string }>();
    expect(kept.results.map((row) => row.id)).toEqual(["ev_applied_old", "ev_rejected_old"]);
    const minutes = await shardedDb
      .prepare("SELECT minute FROM pipeline_minutes WHERE merchant_id = ?")
      .bind(merchantId)
      .all<{ minute: string }>();
    expect(minutes.results.map((row) => row.minute)).toEqual([keptFrom]);
    expect(Date.parse(`${keptFrom}:00.000Z`)).toBeLessThan(NOW - 1_441 * 60_000);
  });

  it("keeps a batch still running, an alert still open or owing its notification, and any batch for 14 days", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const db = await dbOfMerchant(merchantId);
    const long = daysAgo(400);
    const tag = (name: string) => `${name}_${merchantId}`;
    await db.batch([
      db.insert(batches).values(finishedBatch(merchantId, tag("batch_running"), long, "running")),
      db.insert(batches).values(finishedBatch(merchantId, tag("batch_10d"), daysAgo(10))),
      db.insert(batches).values(finishedBatch(merchantId, tag("batch_20d"), daysAgo(20))),
      db.insert(alerts).values(resolvedAlert(merchantId, tag("alert_open"), long, { state: "open", notificationStatus: null })),
      db.insert(alerts).values(resolvedAlert(merchantId, tag("alert_pending"), long, { notificationStatus: "pending" })),
      db.insert(alerts).values(resolvedAlert(merchantId, tag("alert_no_url"), long, { notificationStatus: null })),
    ]);
    // The shortest window RETENTION_DAYS allows (7): batches still wait BATCH_UNITS_KEPT_DAYS (14).
    const pruned = await pruneBookkeeping({ db, now: NOW, retentionDays: 7 });
    // Counted over the whole shard, which other files' merchants share (a move may bring more): this merchant's rows are
    // checked one by one below.
    expect(pruned.batches).toBeGreaterThanOrEqual(1);
    expect(pruned.alerts).toBeGreaterThanOrEqual(1);
    const left = await shardedDb
      .prepare("SELECT id FROM batches WHERE merchant_id = ? UNION ALL SELECT id FROM alerts WHERE merchant_id = ? ORDER BY id")
      .bind(merchantId, merchantId)
      .all<{ id: string }>();
    expect(left.results.map((row) => row.id)).toEqual(
      [tag("alert_open"), tag("alert_pending"), tag("batch_10d"), tag("batch_running")].sort(),
    );
  });

  it("prunes settled endpoint messages, never a pending one, and the changes no message refers to, keeping a latest change the stream may still need", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const db = await dbOfMerchant(merchantId);
    const old = daysAgo(RETENTION_DAYS + 1);
    const young = daysAgo(RETENTION_DAYS - 1);
    const [live, paused] = [`ep_live_${merchantId}`, `ep_paused_${merchantId}`];
    const tr = (name: string) => `tr_${name}_${merchantId}`;
    const msg = (name: string, values: Partial<Parameters<typeof message>[0]> & { transactionId: string }) =>
      db.insert(endpointMessages).values(message({ merchantId, endpointId: live, id: `msg_${name}_${merchantId}`, at: old, ...values }));
    const stream = (name: string, sequence: number, status: string, captured: boolean) =>
      db.insert(transactionStreams).values({ merchantId, transactionId: tr(name), sequence, status, captured });
    const changes = (name: string, ...statuses: [string, string][]) =>
      statuses.map(([status, at], i) =>
        db.insert(transactionChanges).values(change({ merchantId, transactionId: tr(name), sequence: i + 1, status, at })),
      );
    await db.batch([
      db.insert(endpoints).values(await endpointRow(merchantId, live)),
      db.insert(endpoints).values(await endpointRow(merchantId, paused, "paused")),
      // Settled on an enabled endpoint: delivered and failed go; pending and young stay; a paused endpoint's waits.
      msg("delivered", { transactionId: tr("settled") }),
      msg("failed", { transactionId: tr("settled"), captured: true, status: "failed" }),
      msg("pending", { transactionId: tr("waiting"), sequence: 1, status: "pending" }),
      msg("young", { transactionId: tr("young"), at: young }),
      db
        .insert(endpointMessages)
        .values(message({ merchantId, endpointId: paused, id: `msg_paused_${merchantId}`, transactionId: tr("paused"), at: old })),
      // The changes the settled messages referred to go with them; the pending message's change stays.
      stream("settled", 1, "completed", true),
      ...changes("settled", ["completed", old]),
      stream("waiting", 2, "refunded", true),
      ...changes("waiting", ["completed", old], ["refunded", young]),
      // Latest changes: announced capture → goes; not a captured status → goes; completed but capture not yet announced → stays.
      stream("announced", 2, "refunded", true),
      ...changes("announced", ["pending", old], ["refunded", old]),
      stream("declined", 1, "failed", false),
      ...changes("declined", ["failed", old]),
      stream("unannounced", 2, "completed", false),
      ...changes("unannounced", ["pending", old], ["completed", old]),
    ]);

    const pruned = await pruneBookkeeping({ db, now: NOW, retentionDays: RETENTION_DAYS });
    expect(pruned).toMatchObject({ endpoint_messages: 2, transaction_changes: 5 });
    const messages = await shardedDb
      .prepare("SELECT id FROM endpoint_messages WHERE merchant_id = ? ORDER BY id")
      .bind(merchantId)
      .all<{ id: string }>();
    expect(messages.results.map((row) => row.id)).toEqual(["paused", "pending", "young"].map((name) => `msg_${name}_${merchantId}`));
    const kept = await shardedDb
      .prepare("SELECT transaction_id AS t, sequence AS n FROM transaction_changes WHERE merchant_id = ? ORDER BY t, n")
      .bind(merchantId)
      .all<{ t: string; n: number }>();
    expect(kept.results).toEqual([
      { t: tr("unannounced"), n: 2 },
      { t: tr("waiting"), n: 1 },
      { t: tr("waiting"), n: 2 },
    ]);
  });

  it(`deletes at most ${PRUNED_PER_TABLE_PER_RUN} rows of a table per run; the rest go on the next`, async () => {
    const old = daysAgo(BATCH_UNITS_KEPT_DAYS + 100);
    await env.DB.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO batch_units (unit_id, batch_id, finished_at) SELECT 'unit_flood_' || i, NULL, ? FROM n`,
    )
      .bind(PRUNED_PER_TABLE_PER_RUN + 1, old)
      .run();
    expect((await pruneBookkeeping({ db, now: NOW, retentionDays: RETENTION_DAYS })).batch_units).toBe(PRUNED_PER_TABLE_PER_RUN);
    expect((await pruneBookkeeping({ db, now: NOW, retentionDays: RETENTION_DAYS })).batch_units).toBe(1);
    const left = await env.DB.prepare("SELECT count(*) AS n FROM batch_units WHERE unit_id LIKE 'unit_flood_%'").first<{ n: number }>();
    expect(left?.n).toBe(0);
  });

  it(`prunes endpoint messages in steps of ${PRUNED_PER_TABLE_PER_RUN} too`, async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const db = await dbOfMerchant(merchantId);
    const endpointId = `ep_flood_${merchantId}`;
    await db.insert(endpoints).values(await endpointRow(merchantId, endpointId));
    await db.$client
      .prepare(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
         INSERT INTO endpoint_messages (id, merchant_id, endpoint_id, transaction_id, sequence, position, type, status, next_attempt_at, created_at)
         SELECT 'msg_flood_' || i, ?, ?, 'tr_flood_' || i, 1, 2, 'transaction.completed', 'delivered', ?, ? FROM n`,
      )
      .bind(PRUNED_PER_TABLE_PER_RUN + 1, merchantId, endpointId, daysAgo(RETENTION_DAYS + 1), daysAgo(RETENTION_DAYS + 1))
      .run();
    expect((await pruneBookkeeping({ db, now: NOW, retentionDays: RETENTION_DAYS })).endpoint_messages).toBe(PRUNED_PER_TABLE_PER_RUN);
    expect((await pruneBookkeeping({ db, now: NOW, retentionDays: RETENTION_DAYS })).endpoint_messages).toBe(1);
  });

  it("is a step of the Cron Trigger's run: histories archived, bookkeeping pruned, figures logged", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const transaction = await seedTransaction(merchantId, { status: "completed", updatedAt: daysAgo(RETENTION_DAYS + 2) });
    await seedEvent({ merchantId, transactionId: transaction.id });
    await seedOperation({ merchantId, transactionId: transaction.id });
    await seedBookkeeping(merchantId, `cron_${merchantId}`, RETENTION_DAYS + 5);

    const logs = vi.spyOn(console, "log");
    await worker.scheduled(createScheduledController({ scheduledTime: NOW, cron: "*/5 * * * *" }), env, createExecutionContext());
    const run = logs.mock.calls.map(([line]) => JSON.parse(String(line))).find((line) => line.message === "scheduled.run");
    expect(run?.failed_steps).not.toContain("retention");
    expect(run).toMatchObject({ archive_objects_stored: 1, archive_transactions: 1, archive_records: 2, pruned_batch_units: 1 });
    expect(await rowsInD1(merchantId)).toEqual({ events: 0, operations: 0 });
    expect(await ledger(merchantId)).toMatchObject([{ status: "stored" }]);
    // Everything seeded went but the record-owned timeline rows, which leave D1 only with a history (0027).
    const left = await remaining([`cron_${merchantId}`]);
    expect(Object.entries(left).filter(([, tags]) => tags.length > 0)).toEqual(
      RECORD_OWNED.map((table) => [table, [`cron_${merchantId}`]]),
    );
  });

  it("fails the step, naming the merchant, when its archive fails; pruning still runs and the rows stay", async () => {
    const merchant = await createMerchant();
    const merchantId = merchant.merchant.id;
    const db = await dbOfMerchant(merchantId);
    const transaction = await seedTransaction(merchantId, { status: "failed", updatedAt: daysAgo(RETENTION_DAYS + 3) });
    await seedEvent({ merchantId, transactionId: transaction.id });
    await seedBookkeeping(merchantId, `failing_${merchantId}`, RETENTION_DAYS + 5);
    const refusing = {
      get: env.ARCHIVE.get.bind(env.ARCHIVE),
      head: env.ARCHIVE.head.bind(env.ARCHIVE),
      put: () => Promise.reject(new Error("R2 put: service unavailable (injected)")),
    };
    await expect(runRetention({ db, bucket: refusing, now: NOW, retentionDays: RETENTION_DAYS })).rejects.toThrow(
      new RegExp(`archive failed for ${merchantId}`),
    );
    expect(await rowsInD1(merchantId)).toEqual({ events: 1, operations: 0 });
    // Pruning ran; the dead letter, whose page R2 refused too, stays in D1 for the next run.
    const left = await remaining([`failing_${merchantId}`]);
    expect(Object.entries(left).filter(([, tags]) => tags.length > 0)).toEqual([
      ["dead_letters", [`failing_${merchantId}`]],
      ...RECORD_OWNED.map((table) => [table, [`failing_${merchantId}`]]),
    ]);
    // The next run, with R2 back, finishes the object the failed one claimed.
    expect(await runRetention({ db, bucket: env.ARCHIVE, now: NOW, retentionDays: RETENTION_DAYS })).toMatchObject({
      archive_objects_stored: 1,
      dead_letter_pages_stored: 1,
    });
    expect(await rowsInD1(merchantId)).toEqual({ events: 0, operations: 0 });
    expect((await remaining([`failing_${merchantId}`])).dead_letters).toEqual([]);
  });
});
