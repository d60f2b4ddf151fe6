/**
 * Named readings of smart-router.md: each preset answers one of the docs' silences the other plausible way (README,
 * "Readings"). A test proves the service right under every reading by running it once per name:
 *
 * ```ts
 * for (const name of readingNames) await createProject(sandbox, { readings: readingPatch(name) });
 * ```
 */
import { DEFAULT_SETTINGS, type Readings } from "./settings.ts";

const DEFAULTS: Readings = DEFAULT_SETTINGS.readings;

/**
 * Every preset is a whole `readings` section (defaults plus its own change), so sending one as a PATCH leaves
 * nothing behind from the preset applied before it.
 */
export const READINGS = {
  /** The emulator's first reading: dispute pairs, full list items, no read lag, shortest amounts. */
  default: { ...DEFAULTS },
  /** Disputes change the status alone: no chargeback operation, no chargedback_at. */
  "dispute-no-ops": { ...DEFAULTS, dispute_operations: "none" },
  /** `GET /events` items carry the transaction without its operations. */
  "list-operations-null": { ...DEFAULTS, events_list_items: "operations-null" },
  /** `GET /events` items carry no `data` at all: only `GET /events/{id}` says what happened. */
  "list-no-data": { ...DEFAULTS, events_list_items: "no-data" },
  /** The webhook arrives 2 s (× timeScale) before its event can be read. */
  "read-lag": { ...DEFAULTS, event_read_lag_ms: 2000 },
  /** Amounts without trailing zeros ("10", "22.5"); the same as `default`, named so a test can say which it relies on. */
  "shortest-amounts": { ...DEFAULTS, amount_format: "shortest" },
  /** Amounts with every decimal of the currency ("10.00", "22.50", JPY "1500"). */
  "fixed-amounts": { ...DEFAULTS, amount_format: "fixed" },
  /** `GET /events/{id}` renders the transaction as it is now, not as it was when the event fired. */
  "live-snapshots": { ...DEFAULTS, event_snapshot: "live" },
  /** Every switch off its default at once (the list without data, the harder of the two list readings). */
  combined: {
    dispute_operations: "none",
    events_list_items: "no-data",
    event_read_lag_ms: 2000,
    amount_format: "fixed",
    event_snapshot: "frozen",
  },
} as const satisfies Record<string, Readings>;

export type ReadingName = keyof typeof READINGS;

export const readingNames = Object.keys(READINGS) as ReadingName[];

function isReadingName(name: string): name is ReadingName {
  return Object.hasOwn(READINGS, name);
}

/** The `readings` section of a preset, a fresh copy to send as `{"readings": …}`; throws for a name that is not a preset. */
export function readingPatch(name: string): Readings {
  if (!isReadingName(name)) throw new Error(`unknown reading ${JSON.stringify(name)}; known readings: ${readingNames.join(", ")}`);
  return { ...READINGS[name] };
}
