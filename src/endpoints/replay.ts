import { and, asc, count, eq, gte, inArray, isNull, lt, type SQL } from "drizzle-orm";
import type { Database } from "../db/client";
import { afterRow } from "../db/keyset";
import { endpointMessages, endpointReplays, endpoints } from "../db/schema";
import type { AppConfig } from "../env";
import { ApiError } from "../errors";
import { log } from "../lib/log";
import { postSignedWebhook } from "../outbound/client";
import { fulfillmentUrlAllowed } from "../outbound/url";
import type { EndpointReplayMessage } from "../queue/messages";
import { sendAll } from "../queue/send";
import { messageBody } from "./body";
import { findEndpointRow } from "./endpoints";
import { endpointSecretsOf } from "./secrets";

/** Messages one queue message of a replay resends, in order; the next page is the next queue message (the walk's step). */
export const REPLAY_PAGE = 20;

type ReplayRow = typeof endpointReplays.$inferSelect;

/** What a merchant asks to replay (validated by src/routes/endpoints.ts). */
export interface ReplayInput {
  since: string;
  until: string;
  types?: string[];
  dry_run: boolean;
}

/** The replay as merchants see it (contract.md, "Replay"). */
export function presentReplay(row: ReplayRow) {
  return {
    id: row.id,
    status: row.status,
    total: row.total,
    sent: row.sent,
    failed: row.failed,
    dry_run: row.dryRun,
    ...(row.error ? { error: row.error } : {}),
  };
}

/** The endpoint's messages a replay covers: created in [since, until), of the given types if any. */
function inRange(row: Pick<ReplayRow, "endpointId" | "since" | "until" | "types">): SQL | undefined {
  return and(
    eq(endpointMessages.endpointId, row.endpointId),
    gte(endpointMessages.createdAt, row.since),
    lt(endpointMessages.createdAt, row.until),
    row.types ? inArray(endpointMessages.type, row.types) : undefined,
  );
}

/**
 * Starts a replay: counts the messages of the range (a dry run stops there, `completed` with its `total`), else queues
 * its first page in the batch lane. Only an enabled endpoint is replayed to (a paused one receives nothing).
 */
export async function createReplay({
  db,
  queue,
  merchantId,
  endpointId,
  input,
}: {
  db: Database;
  queue: Queue;
  merchantId: string;
  endpointId: string;
  input: ReplayInput;
}) {
  const endpoint = await findEndpointRow({ db, merchantId, endpointId });
  if (!input.dry_run && endpoint.status !== "enabled") {
    throw new ApiError("conflict", `endpoint ${endpointId} is ${endpoint.status}; enable it (PATCH status "enabled") before a replay`);
  }
  const range = {
    endpointId,
    since: new Date(input.since).toISOString(),
    until: new Date(input.until).toISOString(),
    types: input.types ? [...new Set(input.types)] : null,
  };
  const [counted] = await db.select({ total: count() }).from(endpointMessages).where(inRange(range));
  const id = `rpl_${crypto.randomUUID().replaceAll("-", "")}`;
  const status = input.dry_run ? "completed" : "queued";
  const finishedAt = input.dry_run ? new Date().toISOString() : null;
  const row = await db
    .insert(endpointReplays)
    .values({ id, merchantId, ...range, dryRun: input.dry_run, status, total: counted?.total ?? 0, finishedAt })
    .returning()
    .get();
  if (input.dry_run) return presentReplay(row);
  try {
    await sendAll(queue, [{ v: 1, kind: "endpoint_replay", replay_id: id, merchant_id: merchantId } satisfies EndpointReplayMessage]);
  } catch {
    await finishReplay({ db, replayId: id, status: "cancelled", error: "could not queue the replay" });
    throw new ApiError("service_unavailable", "the replay could not be queued; retry later", { "Retry-After": "30" });
  }
  return presentReplay(row);
}

/** One of the endpoint's replays; another merchant's, or another endpoint's, is a 404. */
export async function findReplay({
  db,
  merchantId,
  endpointId,
  replayId,
}: {
  db: Database;
  merchantId: string;
  endpointId: string;
  replayId: string;
}) {
  const row = await db
    .select()
    .from(endpointReplays)
    .where(and(eq(endpointReplays.id, replayId), eq(endpointReplays.merchantId, merchantId), eq(endpointReplays.endpointId, endpointId)))
    .get();
  if (!row) throw new ApiError("not_found", `replay ${replayId} not found`);
  return row;
}

/** Ends a replay still queued or running (compare-and-set): completed, or cancelled with the reason merchants see. */
export async function finishReplay({
  db,
  replayId,
  status,
  error,
}: {
  db: Database;
  replayId: string;
  status: "completed" | "cancelled";
  error?: string;
}) {
  return db
    .update(endpointReplays)
    .set({ status, finishedAt: new Date().toISOString(), ...(error ? { error } : {}) })
    .where(and(eq(endpointReplays.id, replayId), inArray(endpointReplays.status, ["queued", "running"])))
    .returning()
    .get();
}

/** Cancels a replay that has not finished: pages still queued stop as they come up (409 once it has finished). */
export async function cancelReplay(input: { db: Database; merchantId: string; endpointId: string; replayId: string }) {
  await findReplay(input);
  const row = await finishReplay({ db: input.db, replayId: input.replayId, status: "cancelled" });
  if (row) return presentReplay(row);
  const existing = await findReplay(input);
  throw new ApiError("conflict", `replay ${input.replayId} is already ${existing.status}`);
}

/**
 * Resends one page of a replay, in the order the messages were created (so each transaction's in `sequence` order),
 * one attempt each with the same `webhook-id`, then records the page with compare-and-set on where it started (a
 * redelivered page moves no counter twice) and queues the next. The walk ends when a page comes back short, or the
 * replay is cancelled, or its endpoint is no longer enabled.
 */
export async function replayPage({
  db,
  config,
  queue,
  work,
}: {
  db: Database;
  config: AppConfig;
  queue: Queue;
  work: EndpointReplayMessage;
}) {
  const replay = await db.select().from(endpointReplays).where(eq(endpointReplays.id, work.replay_id)).get();
  if (!replay || (replay.status !== "queued" && replay.status !== "running")) return;
  const endpoint = await db.select().from(endpoints).where(eq(endpoints.id, replay.endpointId)).get();
  if (endpoint?.status !== "enabled" || !fulfillmentUrlAllowed(endpoint.url, config.ALLOW_LOOPBACK_FULFILLMENT_URLS)) {
    await finishReplay({ db, replayId: replay.id, status: "cancelled", error: `endpoint ${replay.endpointId} is not enabled` });
    return;
  }
  const after = replay.cursor === null ? undefined : (JSON.parse(replay.cursor) as [string, number]);
  const page = await db
    .select()
    .from(endpointMessages)
    .where(and(inRange(replay), afterRow("asc", [endpointMessages.createdAt, endpointMessages.seq], after)))
    .orderBy(asc(endpointMessages.createdAt), asc(endpointMessages.seq))
    .limit(REPLAY_PAGE);
  const secrets = await endpointSecretsOf(config, endpoint, Date.now());
  let sent = 0;
  for (const message of page) {
    const payload = await messageBody({ db, message });
    const result =
      payload === null
        ? null
        : await postSignedWebhook({ url: endpoint.url, messageId: message.id, payload, secrets, now: Date.now(), receiver: "endpoint" });
    if (result?.kind === "delivered") sent += 1;
  }
  await recordPage({ db, queue, replay, page, sent });
}

/** Moves a replay past a page it resent (compare-and-set on its cursor), then completes it or queues the next page. */
async function recordPage({
  db,
  queue,
  replay,
  page,
  sent,
}: {
  db: Database;
  queue: Queue;
  replay: ReplayRow;
  page: readonly (typeof endpointMessages.$inferSelect)[];
  sent: number;
}) {
  const last = page.at(-1);
  const done = page.length < REPLAY_PAGE;
  const cursorWas = replay.cursor === null ? undefined : replay.cursor;
  const moved = await db
    .update(endpointReplays)
    .set({
      status: done ? "completed" : "running",
      sent: replay.sent + sent,
      failed: replay.failed + page.length - sent,
      cursor: last ? JSON.stringify([last.createdAt, last.seq]) : replay.cursor,
      ...(done ? { finishedAt: new Date().toISOString() } : {}),
    })
    .where(
      and(
        eq(endpointReplays.id, replay.id),
        inArray(endpointReplays.status, ["queued", "running"]),
        cursorWas === undefined ? isNull(endpointReplays.cursor) : eq(endpointReplays.cursor, cursorWas),
      ),
    )
    .returning({ id: endpointReplays.id })
    .get();
  log("info", "endpoint.replay_page", { replay_id: replay.id, messages: page.length, sent, recorded: moved !== undefined });
  if (moved && !done) await sendAll(queue, [{ v: 1, kind: "endpoint_replay", replay_id: replay.id, merchant_id: replay.merchantId }]);
}
