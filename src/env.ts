import { z } from "zod";

/** Secrets are not in wrangler.toml, so `wrangler types` cannot see them; they are declared here. */
export type AppEnv = Env & {
  ADMIN_TOKEN: string;
  /** The token ADMIN_TOKEN replaced, accepted as well during a rotation; removed once every caller has the new one. */
  ADMIN_TOKEN_PREVIOUS?: string;
  SECRETS_KEY: string;
  /** The key SECRETS_KEY replaced, kept during a rotation so older ciphertexts still decrypt. */
  SECRETS_KEY_PREVIOUS?: string;
  /** Local development and tests only (never in wrangler.toml): lets `fulfillment_url` name a loopback http server. */
  ALLOW_LOOPBACK_FULFILLMENT_URLS?: string;
  /** Optional at run time (wrangler.toml sets it); src/retention reads it through `retentionDays`. */
  RETENTION_DAYS?: string;
  /** Optional: what one D1 shard may hold, in bytes (src/db/shard-status.ts); D1's 10 GB when unset. */
  SHARD_CAPACITY_BYTES?: string;
};

const base64Key = z.string().refine((value) => {
  try {
    return atob(value).length === 32;
  } catch {
    return false;
  }
}, "must be base64 of exactly 32 bytes");

/** Hosts whose plain-http traffic never leaves the machine (WHATWG `URL.hostname` keeps IPv6's brackets). */
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * The Smart Router API base URL: every merchant's secret key travels to it as Basic auth, so it must be https. Plain http
 * is accepted for a loopback host only, where `npm start` and the benches run the emulator.
 */
const smartRouterApiUrl = z.url().refine((value) => {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  return url.protocol === "https:" || (url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname));
}, "must be an https:// URL (plain http only for a loopback host: 127.0.0.1, localhost, [::1])");

const configSchema = z.object({
  SMART_ROUTER_API_URL: smartRouterApiUrl,
  ADMIN_TOKEN: z.string().min(16, "must be at least 16 characters"),
  ADMIN_TOKEN_PREVIOUS: z.string().min(16, "must be at least 16 characters").optional(),
  SECRETS_KEY: base64Key,
  SECRETS_KEY_PREVIOUS: base64Key.optional(),
  /**
   * A fetch-back 404 is asked once more after this many seconds before the event is called forged: Smart Router may
   * send a webhook a moment before its event can be read (read-after-write lag). Tests set it low.
   */
  FETCH_BACK_RECHECK_SECONDS: z.coerce.number().int().min(0).max(3600).default(30),
  /**
   * Test-only: multiplies every retry delay and horizon (src/queue/backoff.ts), so a test or `npm run chaos --outage`
   * sees a 3-day horizon in seconds. Never set in production (1).
   */
  RETRY_SCHEDULE_SCALE: z.coerce.number().gt(0).max(1).default(1),
  /**
   * Reconciliation refreshes an in-flight record nothing has looked at (webhook or refresh) for this many minutes. Not
   * whole minutes only: `npm run chaos` sets 0.25.
   */
  RECONCILE_AFTER_MINUTES: z.coerce.number().min(0).default(30),
  /**
   * A transaction's history (settled inbox rows, operations) moves to R2 once the transaction has been out of flight and
   * unchanged this many days; bookkeeping rows are pruned on the same window (src/retention). At least 7: Smart Router
   * retries a webhook for ~3 days and webhook dead letters are redriven for 7, so nothing younger can still arrive.
   */
  RETENTION_DAYS: z.coerce.number().int().min(7).max(3650).default(30),
  /**
   * What one D1 shard may hold, in bytes: `GET /admin/shards` measures `used` against it, a shard past 80 % of it takes
   * no new merchant, and the `shard_capacity` admin alerts fire at 80, 90 and 95 %. D1's limit per database on the Paid
   * plan by default; 500 MB (500000000) on the Free plan.
   */
  SHARD_CAPACITY_BYTES: z.coerce.number().int().min(1).max(1e13).default(10_000_000_000),
  /**
   * `"true"` lets `fulfillment_url` be `http://127.0.0.1:…` or `http://localhost:…`: `npm start`, the demo, chaos and the
   * tests set it, so the emulator's sink on the loopback can receive notifications. Never set in production.
   */
  ALLOW_LOOPBACK_FULFILLMENT_URLS: z
    .enum(["true", "false"])
    .default("false")
    .transform((value) => value === "true"),
});

export type AppConfig = z.infer<typeof configSchema>;

/** One variable alone, by its entry of the schema, so a step that needs nothing else runs whatever another one holds. */
function setting<K extends "RETENTION_DAYS" | "SHARD_CAPACITY_BYTES">(env: AppEnv, name: K): AppConfig[K] {
  const parsed = configSchema.shape[name].safeParse(env[name]);
  if (!parsed.success) {
    throw new Error(`invalid configuration: ${name}: ${parsed.error.issues.map((issue) => issue.message).join("; ")}`);
  }
  return parsed.data;
}

/**
 * RETENTION_DAYS alone: the retention step needs nothing else, so another variable's misconfiguration (which `appConfig`
 * reports everywhere else) does not stop it.
 */
export const retentionDays = (env: AppEnv): number => setting(env, "RETENTION_DAYS");

/** SHARD_CAPACITY_BYTES alone, for the cron's shard step (as `retentionDays`). */
export const shardCapacityBytes = (env: AppEnv): number => setting(env, "SHARD_CAPACITY_BYTES");

const checked = new WeakMap<object, AppConfig>();

/** Validates vars and secrets once per env object; a misconfigured deploy fails loudly, naming the variable but never its value. */
export function appConfig(env: AppEnv): AppConfig {
  const cached = checked.get(env);
  if (cached) return cached;
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const names = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new Error(`invalid configuration: ${names.join("; ")}`);
  }
  checked.set(env, parsed.data);
  return parsed.data;
}
