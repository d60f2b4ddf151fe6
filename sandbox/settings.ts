import { z } from "zod";

const rate = z.number().int().min(1).max(1_000_000);
const probability = z.number().min(0).max(1);
const milliseconds = z
  .number()
  .int()
  .min(0)
  .max(7 * 24 * 3600 * 1000);

/** Rate limits per project (smart-router.md §6): requests per minute per bucket, and the burst a full bucket allows. */
export const ratesSchema = z.strictObject({
  primary: rate,
  events: rate,
  sandbox: rate,
  burst: z.number().int().min(1).max(10_000),
  /**
   * How a sandbox project's request counts. `exclusive` (default, the plain reading of §6): only against the sandbox
   * bucket. `both`: against the sandbox bucket and the primary/events bucket, the answer reflecting the tighter one.
   */
  sandbox_bucket: z.enum(["exclusive", "both"]),
});

/** The webhook sender's retry policy. */
export const webhookPolicySchema = z.strictObject({
  max_attempts: z.number().int().min(1).max(50),
  /** Attempt n waits backoff_base_ms × 2^(n-1) (× timeScale) before attempt n+1. */
  backoff_base_ms: milliseconds,
  /** A receiver slower than this (real time, not scaled) counts as a failed attempt. */
  timeout_ms: z.number().int().min(1).max(600_000),
});

/** How long asynchronous steps take before they happen by themselves (× timeScale). */
export const delaysSchema = z.strictObject({
  /** A pending APM payment completes (or fails). */
  apm_ms: milliseconds,
  /** A pending APM refund settles. */
  refund_ms: milliseconds,
  /** Each dispute step of a chargeback test card (created, then won/lost; retrieval request; fraud notification). */
  dispute_ms: milliseconds,
});

/** Misbehaviour on demand, per project. Rates are probabilities drawn with the injectable `random`. */
export const chaosSchema = z.strictObject({
  /** Chance that a delivery is sent twice (two independent deliveries of the same body). */
  duplicate_rate: probability,
  /** Each delivery attempt waits an extra random 0..max_extra_delay_ms (× timeScale): deliveries arrive out of order. */
  max_extra_delay_ms: milliseconds,
  /** Chance that a delivery is never sent (a missed webhook). */
  drop_rate: probability,
  /** Chance, per event, of an extra delivery naming an event id that does not exist. */
  forge_rate: probability,
  /** Added before every API answer (× timeScale). */
  api_latency_ms: milliseconds,
  /** Chance that an API request (after taking its token) is answered 503. */
  api_5xx_rate: probability,
  /** Chance that an API request (after taking its token) is answered 429. */
  api_429_rate: probability,
});

/**
 * Where smart-router.md is silent, the emulator can answer each plausible way (README, "Readings"): a service proven
 * against every reading does not depend on the one the real Smart Router happens to pick.
 */
export const readingsSchema = z.strictObject({
  /**
   * What a dispute step (chargeback created/won/lost, retrieval request, fraud notification) leaves in the history.
   * `pair` (default): a chargeback attempt/result pair, `chargedback_at` set on `created`. `none`: no operation and no
   * timestamp; only the status, the `chargedback` flag and the event's `fired_at` change.
   */
  dispute_operations: z.enum(["pair", "none"]),
  /**
   * What `GET /events` items carry. `full` (default): the whole event, its transaction with every operation.
   * `operations-null`: the transaction with `operations: null`. `no-data`: no `data` key. `GET /events/{id}` is always full.
   */
  events_list_items: z.enum(["full", "operations-null", "no-data"]),
  /** For this long after firing (× timeScale) an event is not readable (404, left out of lists); its webhook is already sent. */
  event_read_lag_ms: milliseconds,
  /** How every amount of transactions and operations is written: `shortest` (default, "10") or `fixed` ("10.00"). */
  amount_format: z.enum(["shortest", "fixed"]),
  /**
   * What `GET /events/{id}` shows of the transaction. `frozen` (default): the snapshot at firing time. `live`: the
   * transaction as it is now (its `fired_at` unchanged), so an early event read late shows a later state.
   */
  event_snapshot: z.enum(["frozen", "live"]),
});

export type Readings = z.infer<typeof readingsSchema>;

export const settingsSchema = z.strictObject({
  rates: ratesSchema,
  webhook: webhookPolicySchema,
  delays: delaysSchema,
  chaos: chaosSchema,
  /** false: pending APMs, pending refunds and dispute steps wait for `/advance` (or `/complete`, `/fail`) instead of a timer. */
  auto_advance: z.boolean(),
  readings: readingsSchema,
});

export type ProjectSettings = z.infer<typeof settingsSchema>;

/** Every section optional, and every field of a section optional: what create and PATCH accept. */
export const settingsPatchSchema = z.strictObject({
  rates: ratesSchema.partial().optional(),
  webhook: webhookPolicySchema.partial().optional(),
  delays: delaysSchema.partial().optional(),
  chaos: chaosSchema.partial().optional(),
  auto_advance: z.boolean().optional(),
  readings: readingsSchema.partial().optional(),
});

export type SettingsPatch = z.infer<typeof settingsPatchSchema>;

export const DEFAULT_SETTINGS: ProjectSettings = {
  // 3000 rpm is the example in smart-router.md §6; the sandbox bucket is deliberately tighter.
  rates: { primary: 3000, events: 3000, sandbox: 1200, burst: 20, sandbox_bucket: "exclusive" },
  // 12 attempts, 2 min doubling: the last retry ~2.8 days after the first attempt ("≥12 attempts over ~3 days").
  webhook: { max_attempts: 12, backoff_base_ms: 120_000, timeout_ms: 10_000 },
  delays: { apm_ms: 3000, refund_ms: 3000, dispute_ms: 5000 },
  chaos: {
    duplicate_rate: 0,
    max_extra_delay_ms: 0,
    drop_rate: 0,
    forge_rate: 0,
    api_latency_ms: 0,
    api_5xx_rate: 0,
    api_429_rate: 0,
  },
  auto_advance: true,
  // The emulator's first reading, unchanged: what every test written before the switches existed expects.
  readings: {
    dispute_operations: "pair",
    events_list_items: "full",
    event_read_lag_ms: 0,
    amount_format: "shortest",
    event_snapshot: "frozen",
  },
};

/** Applies a patch section by section, leaving unnamed fields as they were. */
export function mergeSettings(base: ProjectSettings, patch: SettingsPatch): ProjectSettings {
  return {
    rates: { ...base.rates, ...patch.rates },
    webhook: { ...base.webhook, ...patch.webhook },
    delays: { ...base.delays, ...patch.delays },
    chaos: { ...base.chaos, ...patch.chaos },
    auto_advance: patch.auto_advance ?? base.auto_advance,
    readings: { ...base.readings, ...patch.readings },
  };
}
