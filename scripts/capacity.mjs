// `npm run capacity`: how many D1 shards a traffic needs, from the bytes per payment the bench measured.
//   node scripts/capacity.mjs [--merchants 100] [--payments-per-day 10000] [--retention 30] [--days 365]
//                             [--shards 2] [--capacity 10000000000] [--results bench/results/latest.json]
// A payment weighs `live` bytes while it is within the retention window (its record, operations, inbox rows, timeline)
// and `kept` bytes after it (what retention leaves in D1 once its history is in R2): both from the bench's storage
// section (`bench/results/latest.json`, results.storage.before/after.bytesPerPayment). A shard takes new merchants up
// to 80 % of its capacity (src/db/shards.ts), so that is what each shard is counted for.
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

/** The share of a shard placement fills before it takes no new merchant (src/db/shards.ts, the contract's 80 %). */
export const PLACEMENT_LIMIT = 0.8;

/**
 * D1 bytes after `day` days of a steady traffic: the last `retentionDays` of payments at `live` bytes each, every older
 * one at `kept` bytes.
 */
export function bytesAfter({ paymentsPerDay, live, kept, retentionDays }, day) {
  const recent = Math.min(day, retentionDays);
  return paymentsPerDay * (recent * live + Math.max(0, day - retentionDays) * kept);
}

/**
 * The projection for one traffic: bytes after `days`, the shards it needs (each counted for PLACEMENT_LIMIT of its
 * capacity), and the day `shards` configured shards reach that limit (null: not within 100 years). The search ends
 * because it walks a bounded number of days.
 */
export function project({ merchants, paymentsPerMerchantDay, live, kept, retentionDays, days, shards, capacityBytes }) {
  const traffic = { paymentsPerDay: merchants * paymentsPerMerchantDay, live, kept, retentionDays };
  const usable = capacityBytes * PLACEMENT_LIMIT;
  const bytes = bytesAfter(traffic, days);
  const full = (day) => bytesAfter(traffic, day) > usable * shards;
  let fullOnDay = null;
  for (let day = 1; day <= 36_500; day++) {
    if (full(day)) {
      fullOnDay = day;
      break;
    }
  }
  return {
    paymentsPerDay: traffic.paymentsPerDay,
    bytes,
    shardsNeeded: Math.max(1, Math.ceil(bytes / usable)),
    windowBytes: bytesAfter(traffic, retentionDays),
    fullOnDay,
  };
}

/** The bytes per payment of a bench results file (its storage section). */
export function measuredBytes(results) {
  const storage = results?.results?.storage;
  const live = storage?.before?.bytesPerPayment;
  const kept = storage?.after?.bytesPerPayment;
  if (typeof live !== "number" || typeof kept !== "number") throw new Error("the results file has no storage section (run npm run bench)");
  return { live, kept, date: results.date, retentionDays: results.settings?.storage?.retentionDays };
}

const gb = (bytes) => `${(bytes / 1e9).toFixed(1)} GB`;

function main() {
  const { values } = parseArgs({
    options: {
      merchants: { type: "string", default: "100" },
      "payments-per-day": { type: "string", default: "10000" },
      retention: { type: "string", default: "30" },
      days: { type: "string", default: "365" },
      shards: { type: "string", default: "2" },
      capacity: { type: "string", default: "10000000000" },
      results: { type: "string", default: path.join(import.meta.dirname, "..", "bench", "results", "latest.json") },
    },
  });
  const measured = measuredBytes(JSON.parse(readFileSync(values.results, "utf8")));
  const input = {
    merchants: Number(values.merchants),
    paymentsPerMerchantDay: Number(values["payments-per-day"]),
    live: measured.live,
    kept: measured.kept,
    retentionDays: Number(values.retention),
    days: Number(values.days),
    shards: Number(values.shards),
    capacityBytes: Number(values.capacity),
  };
  const p = project(input);
  console.log(`measured (${values.results}, ${measured.date}): ${Math.round(input.live)} B per payment within the retention window, ${Math.round(input.kept)} B after it
traffic: ${input.merchants} merchants × ${input.paymentsPerMerchantDay} payments a day = ${p.paymentsPerDay} a day, retention ${input.retentionDays} days
the retention window alone holds ${gb(p.windowBytes)}; after ${input.days} days: ${gb(p.bytes)} → ${p.shardsNeeded} shards of ${gb(input.capacityBytes)} at ${PLACEMENT_LIMIT * 100} %
${input.shards} shards reach ${PLACEMENT_LIMIT * 100} % ${p.fullOnDay === null ? "not within 100 years" : `on day ${p.fullOnDay}`}`);
}

if (import.meta.main) main();
