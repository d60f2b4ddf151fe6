import { env } from "cloudflare:workers";

/**
 * Tests read and seed rows where the worker keeps them: a merchant's rows on its shard (src/db/shards.ts). `dbFor` is
 * the merchant's D1 database; `shardedDb` takes SQL as D1 does and runs each statement on the shard of the first merchant
 * its bound values name, or, naming none, on every shard (first row found, rows of all, writes everywhere).
 */
export const SHARDS: readonly D1Database[] = [env.DB, env.DB_SHARD_1];

/** The shard index of a merchant, from the directory on DB; undefined for an id no merchant has. */
export async function shardIndexOf(merchantId: string): Promise<number | undefined> {
  const row = await env.DB.prepare("SELECT shard FROM merchant_shards WHERE merchant_id = ?").bind(merchantId).first<{ shard: number }>();
  return row?.shard;
}

/** The D1 database holding a merchant (DB for an unknown one, as the worker does). */
export async function dbFor(merchantId: string): Promise<D1Database> {
  return SHARDS[(await shardIndexOf(merchantId)) ?? 0] ?? env.DB;
}

/** The shard the first merchant among `values` lives on; undefined when none names a merchant. */
async function shardNamedBy(values: readonly unknown[]): Promise<D1Database | undefined> {
  for (const value of values) {
    if (typeof value !== "string" || value.length > 64) continue;
    const index = await shardIndexOf(value);
    if (index !== undefined) return SHARDS[index];
  }
  return undefined;
}

/** A statement of `shardedDb`: bound values are kept until it runs, when they choose its shard. */
export class ShardedStatement {
  constructor(
    readonly sql: string,
    readonly values: readonly unknown[] = [],
  ) {}

  bind(...values: unknown[]): ShardedStatement {
    return new ShardedStatement(this.sql, values);
  }

  /** The statement on each database it runs on. */
  async targets(): Promise<D1PreparedStatement[]> {
    const named = await shardNamedBy(this.values);
    return (named ? [named] : SHARDS).map((db) => db.prepare(this.sql).bind(...this.values));
  }

  async first<T = Record<string, unknown>>(column?: string): Promise<T | null> {
    for (const statement of await this.targets()) {
      const row = column === undefined ? await statement.first<T>() : await statement.first<T>(column);
      if (row !== null) return row;
    }
    return null;
  }

  async all<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    const results = await Promise.all((await this.targets()).map((statement) => statement.all<T>()));
    const [head, ...rest] = results;
    if (!head) throw new Error("no shard bound");
    return { ...head, results: [head, ...rest].flatMap((result) => result.results) };
  }

  async run(): Promise<D1Result> {
    const results = await Promise.all((await this.targets()).map((statement) => statement.run()));
    const [head, ...rest] = results;
    if (!head) throw new Error("no shard bound");
    return { ...head, meta: { ...head.meta, changes: [head, ...rest].reduce((sum, result) => sum + result.meta.changes, 0) } };
  }
}

/** D1 as tests use it, over every shard (see the top of this file). */
export const shardedDb = {
  prepare: (sql: string) => new ShardedStatement(sql),
  /** One D1 batch on the shard of the first statement that names a merchant (DB when none does). */
  async batch(statements: readonly ShardedStatement[]): Promise<D1Result[]> {
    let db: D1Database = env.DB;
    for (const statement of statements) {
      const named = await shardNamedBy(statement.values);
      if (named) {
        db = named;
        break;
      }
    }
    return db.batch(statements.map((statement) => db.prepare(statement.sql).bind(...statement.values)));
  },
};
