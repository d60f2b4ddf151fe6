// The pure parts of `npm run soak -- --move` (scripts/soak.mjs): which merchant moves, what its job row says about the
// move, and how the stored transactions compare with the emulator's. Tested in test/scripts/soak-move.test.mjs.

/** The transaction fields compared with the emulator's truth: the status and every amount (decimal strings, as sent). */
export const TRUTH_FIELDS = [
  "status",
  "currency",
  "amount",
  "authorized_amount",
  "captured_amount",
  "refunded_amount",
  "available_amount",
  "voided_amount",
];

/**
 * The merchant with the most payments on one shard (ties: the lowest id), from each shard's
 * `[{ merchant_id, n }]` (payments per merchant); null when no shard holds a payment.
 */
export function pickMerchantToMove(byShard) {
  let best = null;
  byShard.forEach((rows, shard) => {
    for (const { merchant_id: merchantId, n } of rows) {
      if (!best || n > best.payments || (n === best.payments && merchantId < best.merchantId)) {
        best = { merchantId, shard, payments: n };
      }
    }
  });
  return best;
}

const seconds = (from, to) => (from && to ? (Date.parse(to) - Date.parse(from)) / 1000 : null);

/**
 * The move's figures from its `merchant_moves` row (snake_case columns): the whole move (started → finished), up to the
 * switch, the copy (started → the fence, the catch-up of the change log included), rows copied a second of the copy,
 * and the time writes were fenced. A time the row lacks gives null.
 */
export function moveFigures(job) {
  const copySeconds = seconds(job.started_at, job.fence_started_at);
  return {
    status: job.status,
    rowsCopied: job.rows_copied,
    moveSeconds: seconds(job.started_at, job.finished_at),
    toSwitchSeconds: seconds(job.started_at, job.switched_at),
    copySeconds,
    rowsPerSecond: copySeconds ? job.rows_copied / copySeconds : null,
    fenceSeconds: seconds(job.fence_started_at, job.fence_ended_at),
    cleaningSeconds: seconds(job.switched_at, job.finished_at),
  };
}

/**
 * Where a merchant's stored transactions differ from the emulator's (`fields`, by default `TRUTH_FIELDS`): a
 * transaction missing from either side, or a field that differs, each as `{ id, field, stored, truth }`.
 */
export function truthDifferences(stored, truth, fields = TRUTH_FIELDS) {
  const byId = new Map(stored.map((row) => [row.id, row]));
  const differences = [];
  for (const expected of truth) {
    const row = byId.get(expected.id);
    byId.delete(expected.id);
    if (!row) {
      differences.push({ id: expected.id, field: "missing", stored: null, truth: expected.status });
      continue;
    }
    for (const field of fields) {
      if (row[field] !== expected[field]) differences.push({ id: expected.id, field, stored: row[field], truth: expected[field] });
    }
  }
  for (const row of byId.values()) differences.push({ id: row.id, field: "extra", stored: row.status, truth: null });
  return differences;
}

/**
 * Fulfilment rows against the payments the emulator captured: captured ones without a row, rows of payments not
 * captured, and transactions with more than one row (`rows`: `[{ transaction_id, n }]`).
 */
export function fulfilmentDifferences(rows, truth) {
  const captured = new Set(truth.filter((t) => t.captured === true).map((t) => t.id));
  const fulfilled = new Set(rows.map((row) => row.transaction_id));
  return {
    missing: [...captured].filter((id) => !fulfilled.has(id)),
    extra: [...fulfilled].filter((id) => !captured.has(id)),
    duplicated: rows.filter((row) => row.n !== 1).map((row) => row.transaction_id),
  };
}

/**
 * Deliveries one worker log line says were put back because a write met a moving merchant's fence: the webhook
 * consumer's failed commit (`webhooks.batch_failed`), or a webhook queue part that threw (`queue.shard_part_failed`),
 * with D1's `merchant_fenced`. Any other line: 0.
 */
export function fencedRetries(line) {
  let entry;
  try {
    entry = JSON.parse(line);
  } catch {
    return 0;
  }
  if (typeof entry !== "object" || entry === null || !String(entry.error ?? "").includes("merchant_fenced")) return 0;
  const webhooks =
    entry.message === "webhooks.batch_failed" || (entry.message === "queue.shard_part_failed" && entry.queue === "smart-router-webhooks");
  return webhooks && Number.isInteger(entry.messages) ? entry.messages : 0;
}

/** Splits held messages (`{ dueAt }`) into those due at `now` (at most `max`, oldest first) and the rest. */
export function takeDue(held, now, max = Number.POSITIVE_INFINITY) {
  const due = [];
  const rest = [];
  for (const item of held) (item.dueAt <= now && due.length < max ? due : rest).push(item);
  return { due, rest };
}
