import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { type AppEnv, appConfig } from "../../src/env";
import { runMoveStep } from "../../src/moves/moves";
import { MOVED_TABLES, type MovedTable } from "../../src/moves/tables";
import type { MerchantMoveMessage } from "../../src/queue/messages";
import { call } from "./fixtures";
import type { Shop } from "./sandbox";
import { SHARDS } from "./shards";

/** The D1 binding of a shard index, as the worker binds it. */
export const shardDb = (index: number): D1Database => SHARDS[index] ?? env.DB;

/** `id:status` of each of the shop's transactions, as the status API lists them (it must answer 200). */
export async function statusOf(shop: Shop): Promise<string[]> {
  const response = await call("/v1/transactions?limit=100", { headers: { authorization: `Bearer ${shop.merchant.api_key}` } });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { transactions: { id: string; status: string }[] };
  return body.transactions.map((t) => `${t.id}:${t.status}`).sort();
}

/** The merchant's rows of a moved table, `x` being its alias (written here apart from src/moves/tables.ts, to check it). */
function ownedWhere(table: MovedTable): string {
  if (table.name === "merchants") return "x.id = ?1";
  if (table.name === "batch_units") return "x.batch_id IN (SELECT id FROM batches WHERE merchant_id = ?1)";
  if (table.name === "archive_pages") return "x.kind = 'dead_letters' AND x.scope = ?1";
  return "x.merchant_id = ?1";
}

/** Each moved table's count of the merchant's rows on one shard. */
export async function countsOn(db: D1Database, merchantId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of MOVED_TABLES) {
    const row = await db
      .prepare(`SELECT count(*) AS n FROM "${table.name}" AS x WHERE ${ownedWhere(table)}`)
      .bind(merchantId)
      .first<{ n: number }>();
    counts[table.name] = row?.n ?? 0;
  }
  return counts;
}

/**
 * Every row of the merchant on one shard, table by table, as sorted JSON: ids the shard assigns (and columns naming
 * them) are left out, since a copied row takes a new one; everything else must be equal on both shards.
 */
export async function rowsOn(db: D1Database, merchantId: string): Promise<Record<string, string[]>> {
  const rows: Record<string, string[]> = {};
  for (const table of MOVED_TABLES) {
    const skipped = new Set([...(table.ownId ? table.key : []), ...Object.keys(table.remap ?? {})]);
    const found = await db
      .prepare(`SELECT x.* FROM "${table.name}" AS x WHERE ${ownedWhere(table)}`)
      .bind(merchantId)
      .all();
    rows[table.name] = found.results.map((row) => JSON.stringify(Object.entries(row).filter(([column]) => !skipped.has(column)))).sort();
  }
  return rows;
}

/** A crash a test injects into one run of a move's step. */
export type Crash = "before its compare-and-set" | "after its compare-and-set" | "run twice at once";
export const CRASHES: readonly Crash[] = ["before its compare-and-set", "after its compare-and-set", "run twice at once"];

/**
 * The worker's bindings with DB (where the move job lives) wrapped: armed, the next D1 batch carrying the job's
 * compare-and-set dies, either before it runs (nothing of it committed) or right after it committed (nothing after it
 * happens: no follow-up, no next message), as an isolate killed at that instant would.
 */
export function crashableEnv() {
  const sqlOf = new WeakMap<object, string>();
  const state: { armed: "before" | "after" | null } = { armed: null };
  const isCas = (statement: object) => /^update "merchant_moves" set/i.test(sqlOf.get(statement) ?? "");
  const db = new Proxy(env.DB, {
    get(target, property) {
      if (property === "prepare") {
        return (query: string) => {
          const prepared = target.prepare(query);
          sqlOf.set(prepared, query);
          return new Proxy(prepared, {
            get(statement, name) {
              if (name === "bind")
                return (...params: unknown[]) => {
                  const bound = statement.bind(...params);
                  sqlOf.set(bound, query);
                  return bound;
                };
              const value = Reflect.get(statement, name);
              return typeof value === "function" ? value.bind(statement) : value;
            },
          });
        };
      }
      if (property === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          const armed = state.armed;
          if (!armed || !statements.some(isCas)) return target.batch(statements);
          state.armed = null;
          if (armed === "after") await target.batch(statements);
          throw new Error(`crash injected ${armed} the move's compare-and-set`);
        };
      }
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const bindings: AppEnv = { ...env, DB: db };
  return { env: bindings, arm: (when: "before" | "after") => (state.armed = when) };
}

/** A batch queue that keeps each step message a move sends, for the test to deliver (or lose) as it chooses. */
export function stepQueue() {
  const sent: MerchantMoveMessage[] = [];
  const queue: Queue = {
    metrics: async () => ({ backlogCount: sent.length, backlogBytes: 0 }),
    send: async (body) => {
      sent.push(body as MerchantMoveMessage);
      return { metadata: { metrics: { backlogCount: sent.length, backlogBytes: 0 } } };
    },
    sendBatch: async (messages) => {
      for (const message of messages) sent.push(message.body as MerchantMoveMessage);
      return { metadata: { metrics: { backlogCount: sent.length, backlogBytes: 0 } } };
    },
  };
  return { queue, sent };
}

export type StepKind = "copy page" | "catch-up page" | "fence" | "switch" | "cleaning";
export const STEP_KINDS: readonly StepKind[] = ["copy page", "catch-up page", "fence", "switch", "cleaning"];

export interface MoveJob {
  id: string;
  merchant_id: string;
  from_shard: number;
  to_shard: number;
  status: string;
  step: number;
  rows_copied: number;
  error: string | null;
  last_error: string | null;
  updated_at: string;
}

export const jobOf = async (moveId: string) => {
  const job = await env.DB.prepare("SELECT * FROM merchant_moves WHERE id = ?").bind(moveId).first<MoveJob>();
  if (!job) throw new Error(`no move ${moveId}`);
  return job;
};

/** Which step the move's next run takes, from its job, the target's copy progress and the source's change log. */
export async function kindOf(moveId: string): Promise<StepKind> {
  const job = await jobOf(moveId);
  if (job.status === "switching") return "switch";
  if (job.status === "cleaning") return "cleaning";
  const done = await shardDb(job.to_shard)
    .prepare("SELECT count(*) AS n FROM move_progress WHERE move_id = ? AND tbl <> '~changes' AND done = 1")
    .bind(moveId)
    .first<{ n: number }>();
  if ((done?.n ?? 0) < MOVED_TABLES.length) return "copy page";
  const at = await shardDb(job.to_shard)
    .prepare("SELECT cursor FROM move_progress WHERE move_id = ? AND tbl = '~changes'")
    .bind(moveId)
    .first<{ cursor: string | null }>();
  const pending = await shardDb(job.from_shard)
    .prepare("SELECT count(*) AS n FROM move_changes WHERE merchant_id = ? AND seq > ?")
    .bind(job.merchant_id, Number(at?.cursor ?? 0))
    .first<{ n: number }>();
  return (pending?.n ?? 0) >= 500 ? "catch-up page" : "fence";
}

/**
 * Delivers a move's step messages one by one until none is left (horizon: 1,000 steps), as the batch lane would,
 * calling `before` ahead of each; at each step of the kind `crashAt`, the first run meets `crash` and the message is
 * redelivered (`attempts` 2) as the queue's retry does; `until` stops it before a step, its message lost; `scanKeys`
 * lowers the keys a walked table's copy page reads. Answers the kinds of the steps it crashed.
 */
export async function driveMove({
  moveId,
  crashAt,
  crash,
  before,
  until,
  scanKeys,
}: {
  moveId: string;
  crashAt?: StepKind;
  crash?: Crash;
  before?: (kind: StepKind, n: number) => Promise<void>;
  until?: (kind: StepKind, n: number) => boolean;
  scanKeys?: number;
}): Promise<StepKind[]> {
  const { env: bindings, arm } = crashableEnv();
  const { queue, sent } = stepQueue();
  const config = appConfig(bindings);
  const run = (message: MerchantMoveMessage, attempts: number) =>
    runMoveStep({ env: bindings, config, queue, message, attempts, scanKeys });
  sent.push({ v: 1, kind: "merchant_move", move_id: moveId, step: (await jobOf(moveId)).step, shard: 0 });
  const crashed: StepKind[] = [];
  for (let n = 0; n < 1_000; n++) {
    const message = sent.shift();
    if (!message) return crashed;
    const kind = await kindOf(moveId);
    if (until?.(kind, n)) return crashed;
    await before?.(kind, n);
    if (kind !== crashAt || !crash) {
      await run(message, 1);
      continue;
    }
    crashed.push(kind);
    if (crash === "run twice at once") await Promise.all([run(message, 1), run(message, 1)]);
    else {
      arm(crash === "before its compare-and-set" ? "before" : "after");
      await expect(run(message, 1)).rejects.toThrow(/crash injected/);
      // The crashed run sent nothing: the queue redelivers its message.
      expect(sent).toEqual([]);
      await run(message, 2);
    }
    // Exactly one next step goes on, whatever the crash (none once the move is completed).
    const status = (await jobOf(moveId)).status;
    expect(sent.length, `next messages after a crashed ${kind} step`).toBe(status === "completed" ? 0 : 1);
  }
  throw new Error(`move ${moveId} did not end within 1,000 steps`);
}

/**
 * A move's steps run a few at a time, as the batch lane interleaves them with other work: `run(count)` takes up to
 * `count` steps, `finish()` the rest (horizon: 1,000 steps). Answers whether the move had steps left.
 */
export function moveStepper(moveId: string) {
  const { queue, sent } = stepQueue();
  const config = appConfig(env);
  let started = false;
  const next = async (): Promise<boolean> => {
    if (!started) {
      started = true;
      sent.push({ v: 1, kind: "merchant_move", move_id: moveId, step: (await jobOf(moveId)).step, shard: 0 });
    }
    const message = sent.shift();
    if (!message) return false;
    await runMoveStep({ env, config, queue, message, attempts: 1 });
    return true;
  };
  return {
    async run(count: number): Promise<void> {
      for (let i = 0; i < count && (await next()); i++);
    },
    async finish(): Promise<void> {
      for (let i = 0; i < 1_000; i++) if (!(await next())) return;
      throw new Error(`move ${moveId} did not end within 1,000 steps`);
    },
  };
}

/** A merchant's transactions, seeded straight into its shard (no move mark: nothing is logged). */
export async function seedBulkTransactions(db: D1Database, merchantId: string, count: number) {
  await db
    .prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
       INSERT INTO transactions (merchant_id, id, project_id, status, currency, amount, authorized_amount, captured_amount,
         refunded_amount, available_amount, voided_amount, metadata, sandbox, created_at, snapshot_version, updated_at)
       SELECT ?1, 'tr_seed' || i, 'test-proj_seed', 'completed', 'EUR', '1.00', '1.00', '1.00', '0', '1.00', '0', '{}', 1,
         '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM n`,
    )
    .bind(merchantId, count)
    .run();
}
