import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../../src/db/client";
import { alerts, deadLetters, fulfillments } from "../../../src/db/schema";
import { shardStatus } from "../../../src/db/shard-status";
import { shardsOf } from "../../../src/db/shards";
import { type AppEnv, appConfig } from "../../../src/env";
import { MOVE_GIVE_UP_MS, nudgeStuckMoves, startMove } from "../../../src/moves/moves";
import { SCHEDULED_STEPS } from "../../../src/scheduled";
import { ADMIN, call, createMerchant } from "../../support/fixtures";
import { countsOn, driveMove, jobOf, kindOf, moveStepper, rowsOn, shardDb, stepQueue } from "../../support/moves";
import { recordingD1 } from "../../support/recording-d1";
import { shardIndexOf } from "../../support/shards";
import { seedEvent, seedTransactions, transactionRow } from "../../support/status-api";

const DAY = 86_400_000;
const bindingOf = (index: number) => (index === 0 ? "DB" : `DB_SHARD_${index}`);

/** Queue bindings that keep every message and deliver none: what a cron run asked the batch lane and the sweeps to do. */
function recordingQueues() {
  const sent: unknown[] = [];
  const queue: Queue = {
    metrics: async () => ({ backlogCount: 0, backlogBytes: 0 }),
    send: async (body) => {
      sent.push(body);
      return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
    },
    sendBatch: async (messages) => {
      // Ends with the batch's last message.
      for (const message of messages) sent.push(message.body);
      return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
    },
  };
  const bindings: AppEnv = { ...env, BATCHES: queue, FULFILLMENTS: queue, WEBHOOKS: queue, ENDPOINT_MESSAGES: queue };
  const naming = (merchantId: string) => sent.filter((body) => JSON.stringify(body).includes(merchantId));
  return { env: bindings, naming };
}

/** Every step of the Cron Trigger's table (src/scheduled.ts) on one shard only, at `now`; a failed step fails the test. */
async function cronOn(bindings: AppEnv, index: number, now: number) {
  const shard = shardsOf(bindings)[index];
  if (!shard) throw new Error(`no shard ${index}`);
  for (const [step, run] of Object.entries(SCHEDULED_STEPS)) {
    await run(bindings, shard, now).catch((error: unknown) => {
      throw new Error(`step ${step} failed on shard ${index}: ${String(error)}`);
    });
  }
}

/**
 * A merchant with rows every cron step would act on, on its shard, as of `now`: settled records (each with an event)
 * unchanged for 40 days (the archive takes them), an authorization of 2 days ago not captured (an alert; in flight, so reconciliation
 * refreshes it), a fulfilment whose nudge was lost, an open alert whose notification is due, a dead letter of 40 days ago.
 */
async function merchantWithWork(now: number) {
  const created = await createMerchant();
  const merchantId = created.merchant.id;
  const from = await shardIndexOf(merchantId);
  if (from === undefined) throw new Error("merchant in no shard");
  const old = new Date(now - 40 * DAY).toISOString();
  const settled = Array.from({ length: 3 }, () =>
    transactionRow(merchantId, { status: "completed", capturedAmount: "10.50", createdAt: old, updatedAt: old }),
  );
  const twoDays = new Date(now - 2 * DAY).toISOString();
  const authorized = transactionRow(merchantId, { status: "authorized", createdAt: twoDays, updatedAt: twoDays });
  await seedTransactions([...settled, authorized]);
  // Each settled record's history: an event, which the archive moves to R2 with it.
  for (const record of settled)
    await seedEvent({ merchantId, transactionId: record.id, firedAt: old, processedAt: old, firstReceivedAt: old });
  const db = openDatabase(shardDb(from));
  const [first] = settled;
  if (!first) throw new Error("no settled record");
  await db.insert(fulfillments).values({
    merchantId,
    transactionId: first.id,
    messageId: `msg_${crypto.randomUUID().replaceAll("-", "")}`,
    status: "pending",
    requestedAt: new Date(now - 3_600_000).toISOString(),
  });
  await db.insert(alerts).values({
    id: `al_${crypto.randomUUID().replaceAll("-", "")}`,
    merchantId,
    kind: "smart_router_key_refused",
    transactionId: null,
    state: "open",
    detail: "Smart Router answered 401",
    openedAt: twoDays,
    checkedAt: twoDays,
    notificationType: "alert.opened",
    notificationStatus: "pending",
    notificationSince: twoDays,
    notificationDueAt: twoDays,
  });
  await db
    .insert(deadLetters)
    .values({ id: `dl_${crypto.randomUUID()}`, queue: "smart-router-webhooks", merchantId, body: {}, attempts: 3, createdAt: old });
  return { merchantId, from, to: 1 - from };
}

const markOn = (index: number, merchantId: string) =>
  shardDb(index)
    .prepare("SELECT move_id, state FROM move_marks WHERE merchant_id = ?")
    .bind(merchantId)
    .first<{ move_id: string; state: string }>();

const archivedKeys = async (merchantId: string) => (await env.ARCHIVE.list({ prefix: `history/${merchantId}/` })).objects.map((o) => o.key);

/** The shards the admin's merchant list (`GET /admin/merchants`, every page) names the merchant on. */
async function listedShards(merchantId: string): Promise<string[]> {
  const shards: string[] = [];
  let cursor: string | null = null;
  // Ends on the last page (next_cursor null): a few hundred merchants in a test run.
  do {
    const response = await call(`/admin/merchants?limit=100${cursor ? `&cursor=${cursor}` : ""}`, { headers: ADMIN });
    expect(response.status).toBe(200);
    const page = (await response.json()) as { merchants: { id: string; shard: string }[]; next_cursor: string | null };
    shards.push(...page.merchants.filter((m) => m.id === merchantId).map((m) => m.shard));
    cursor = page.next_cursor;
  } while (cursor);
  return shards;
}

/**
 * How the shard's status (`GET /admin/shards` `merchants`) counts its merchant rows, leaving aside other merchants with a
 * row here that a move of another test file has marked (receiving, or moved and not cleaned yet): all, or all but one (`merchantId`'s). Other test files add merchants and move them
 * meanwhile: read again until the rows and marks stayed the same around the status (horizon: 10 reads).
 */
async function countedOn(index: number, merchantId: string) {
  const rows = async () => {
    const merchants = (await shardDb(index).prepare("SELECT count(*) AS n FROM merchants").first<{ n: number }>())?.n ?? 0;
    const others = await shardDb(index)
      .prepare(
        "SELECT count(*) AS n FROM move_marks AS k JOIN merchants AS m ON m.id = k.merchant_id WHERE k.state IN ('receiving', 'moved') AND k.merchant_id <> ?",
      )
      .bind(merchantId)
      .first<{ n: number }>();
    return { merchants, othersElsewhere: others?.n ?? 0 };
  };
  for (let read = 0; read < 10; read++) {
    const before = await rows();
    const status = await shardStatus({ db: openDatabase(shardDb(index)), index, capacityBytes: 10_000_000_000 });
    const after = await rows();
    if (after.merchants !== before.merchants || after.othersElsewhere !== before.othersElsewhere) continue;
    const counted = (status.merchants ?? Number.NaN) + before.othersElsewhere;
    if (counted === before.merchants) return { counted: "all" };
    return { counted: counted === before.merchants - 1 ? "all but one" : `${counted} of ${before.merchants}` };
  }
  throw new Error(`shard ${index}'s merchants kept changing`);
}

/** Steps a move until `stop` says so (horizon: 200 steps): the copy stands there, its next message kept. */
async function stepUntil(stepper: ReturnType<typeof moveStepper>, moveId: string, stop: () => Promise<boolean>) {
  for (let n = 0; n < 200; n++) {
    if (await stop()) return;
    await stepper.run(1);
  }
  throw new Error(`move ${moveId} did not reach its stop within 200 steps`);
}

describe("a move's target leaves the merchant alone while it receives (happy)", () => {
  it.each([
    ["after the merchants page", "merchants"],
    ["after every table's pages", "every table"],
  ])(
    "the target's cron, run %s, writes nothing of the merchant and sends nothing for it; after the switch it serves it",
    async (_name, stop) => {
      const now = Date.now();
      const { merchantId, from, to } = await merchantWithWork(now);
      const move = await startMove({ env, config: appConfig(env), queue: stepQueue().queue, merchantId, to: bindingOf(to) });
      const stepper = moveStepper(move.id);
      await stepUntil(stepper, move.id, async () =>
        stop === "merchants" ? (await countsOn(shardDb(to), merchantId)).merchants === 1 : (await kindOf(move.id)) !== "copy page",
      );
      expect((await jobOf(move.id)).status).toBe("copying");
      expect(await markOn(to, merchantId)).toEqual({ move_id: move.id, state: "receiving" });
      const copied = await rowsOn(shardDb(to), merchantId);
      if (stop === "every table") expect(copied.transactions).toHaveLength(4);

      const cron = recordingQueues();
      await cronOn(cron.env, to, now);
      expect(await rowsOn(shardDb(to), merchantId)).toEqual(copied);
      expect(cron.naming(merchantId)).toEqual([]);
      expect(await archivedKeys(merchantId)).toEqual([]);
      // The admin's list of merchants names it once, on the shard it is placed on.
      expect(await listedShards(merchantId)).toEqual([bindingOf(from)]);
      // …and the target's status counts it not (every merchant row there but the copy's).
      expect(await countedOn(to, merchantId)).toEqual({ counted: "all but one" });

      await stepper.finish();
      const job = await jobOf(move.id);
      expect([job.status, job.error]).toEqual(["completed", null]);
      expect(await markOn(to, merchantId)).toBeNull();
      expect(await countsOn(shardDb(from), merchantId)).toEqual(Object.fromEntries(Object.keys(copied).map((name) => [name, 0])));

      // Placed on the target, the merchant is the target's cron's: archived, walked, reconciled, nudged.
      const after = recordingQueues();
      await cronOn(after.env, to, now);
      expect(await archivedKeys(merchantId)).not.toEqual([]);
      const kinds = after.naming(merchantId).map((body) => (body as { kind?: string }).kind ?? "fulfilment");
      expect(new Set(kinds)).toEqual(new Set(["event_log", "refresh", "fulfilment"]));
    },
  );
});

describe("a move's receiving mark never outlives its move (crashes and undo)", () => {
  it("a crash right after the switch's compare-and-set leaves the target's mark to the resumed move, which lifts it", async () => {
    const created = await createMerchant();
    const merchantId = created.merchant.id;
    const to = 1 - ((await shardIndexOf(merchantId)) ?? 0);
    const move = await startMove({ env, config: appConfig(env), queue: stepQueue().queue, merchantId, to: bindingOf(to) });
    const seen: string[] = [];
    const crashed = await driveMove({
      moveId: move.id,
      crashAt: "switch",
      crash: "after its compare-and-set",
      before: async (kind) => {
        seen.push(`${kind}:${(await markOn(to, merchantId))?.state ?? "none"}`);
      },
    });
    expect(crashed).toEqual(["switch"]);
    // Every copy step and the switch ran with the target receiving; the crash left the mark past the switch (the
    // directory names the target), and the cleaning's first step lifted it.
    expect(
      seen.filter((step) => !step.startsWith("cleaning")).every((step) => step.endsWith(":receiving") || step === "copy page:none"),
    ).toBe(true);
    expect(seen).toContain("switch:receiving");
    expect(seen.find((step) => step.startsWith("cleaning"))).toBe("cleaning:receiving");
    expect(seen.filter((step) => step.startsWith("cleaning")).slice(1)).not.toContain("cleaning:receiving");
    expect((await jobOf(move.id)).status).toBe("completed");
    expect(await markOn(to, merchantId)).toBeNull();
  });

  it("a move failed before its switch (given up by the cron's horizon) lifts the target's mark with its copies", async () => {
    const created = await createMerchant();
    const merchantId = created.merchant.id;
    const from = (await shardIndexOf(merchantId)) ?? 0;
    const to = 1 - from;
    const move = await startMove({ env, config: appConfig(env), queue: stepQueue().queue, merchantId, to: bindingOf(to) });
    await moveStepper(move.id).run(3);
    expect(await markOn(to, merchantId)).toEqual({ move_id: move.id, state: "receiving" });
    const idle = new Date(Date.now() - MOVE_GIVE_UP_MS - 60_000).toISOString();
    await env.DB.prepare("UPDATE merchant_moves SET updated_at = ? WHERE id = ?").bind(idle, move.id).run();
    await nudgeStuckMoves({ env, queue: stepQueue().queue, now: Date.now() });
    expect((await jobOf(move.id)).status).toBe("failed");
    expect(await markOn(to, merchantId)).toBeNull();
    expect(await markOn(from, merchantId)).toBeNull();
    expect(Object.values(await countsOn(shardDb(to), merchantId)).every((n) => n === 0)).toBe(true);
    expect(await shardIndexOf(merchantId)).toBe(from);
  });

  it("a move back to the shard the merchant left: its `moved` mark becomes `receiving`, then goes; the other shard keeps `moved`", async () => {
    const created = await createMerchant();
    const merchantId = created.merchant.id;
    const home = (await shardIndexOf(merchantId)) ?? 0;
    const away = 1 - home;
    const there = await startMove({ env, config: appConfig(env), queue: stepQueue().queue, merchantId, to: bindingOf(away) });
    await moveStepper(there.id).finish();
    expect(await markOn(home, merchantId)).toEqual({ move_id: there.id, state: "moved" });
    expect(await markOn(away, merchantId)).toBeNull();

    const back = await startMove({ env, config: appConfig(env), queue: stepQueue().queue, merchantId, to: bindingOf(home) });
    const stepper = moveStepper(back.id);
    await stepper.run(1);
    expect(await markOn(home, merchantId)).toEqual({ move_id: back.id, state: "receiving" });
    expect(await markOn(away, merchantId)).toEqual({ move_id: back.id, state: "tracking" });
    await stepper.finish();
    expect((await jobOf(back.id)).status).toBe("completed");
    expect(await markOn(home, merchantId)).toBeNull();
    expect(await markOn(away, merchantId)).toEqual({ move_id: back.id, state: "moved" });
    expect(await shardIndexOf(merchantId)).toBe(home);
  });
});

describe("a cron run's look at the marks is a key seek (query plans)", () => {
  it("every statement of every step that reads move_marks seeks it by merchant, never scans it", async () => {
    const now = Date.now();
    const { merchantId, to } = await merchantWithWork(now);
    // A merchant receiving on the target, with rows there, so that every step has a merchant to pass over.
    const move = await startMove({ env, config: appConfig(env), queue: stepQueue().queue, merchantId, to: bindingOf(to) });
    const stepper = moveStepper(move.id);
    await stepUntil(stepper, move.id, async () => (await kindOf(move.id)) !== "copy page");
    const real = shardDb(to);
    const { d1, statements } = recordingD1(real);
    const shard = { index: to, db: openDatabase(d1) };
    const { env: bindings } = recordingQueues();
    for (const run of Object.values(SCHEDULED_STEPS)) await run(bindings, shard, now);
    const reading = statements.filter(({ sql }) => /move_marks/.test(sql));
    // The steps that walk merchants: event log, reconciliation, the sweeps, alerts, archive, dead letters, pruning, keys.
    expect(reading.length).toBeGreaterThanOrEqual(15);
    for (const { sql, params } of reading) {
      const plan = await real
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .bind(...params)
        .all<{ detail: string }>();
      const marks = plan.results.map((row) => row.detail).filter((detail) => /move_marks/.test(detail));
      expect(marks.length, sql).toBeGreaterThan(0);
      for (const detail of marks)
        expect(detail, sql).toMatch(/^SEARCH move_marks USING (COVERING )?INDEX sqlite_autoindex_move_marks_1 \(merchant_id=\?\)$/);
    }
    await stepper.finish();
  });
});
