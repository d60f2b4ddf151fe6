import { sql } from "drizzle-orm";
import type { Database } from "../db/client";
import { servedHere } from "../db/fence";
import { endpointMessages, endpoints } from "../db/schema";
import type { EndpointLaneMessage } from "../queue/messages";
import { sendAll } from "../queue/send";

/** A due message younger than this has its own nudge on the way (at commit, or a retry's delayed one). */
const NUDGE_GRACE_MS = 2 * 60_000;
/** A lane nudged by the sweep and still due this long after is taken for lost again and nudged again. */
const NUDGE_RESEND_AFTER_MS = 10 * 60_000;
/** Lanes nudged per run and shard; a larger backlog is nudged over the next runs. */
export const LANES_PER_RUN = 200;
/** Lanes nudged at once when an endpoint is enabled again; the sweep nudges the rest. */
export const LANES_PER_RESUME = 500;

type LaneRow = { merchant_id: string; endpoint_id: string; transaction_id: string };

const nudgeOf = (row: LaneRow): EndpointLaneMessage => ({
  v: 1,
  merchant_id: row.merchant_id,
  endpoint_id: row.endpoint_id,
  transaction_id: row.transaction_id,
});

/**
 * Nudges the lanes of enabled endpoints whose messages are due and were not nudged lately (a nudge lost after its
 * commit, a retry's delayed nudge lost, a consumer that crashed holding a lease), oldest due first, at most
 * LANES_PER_RUN. Due messages are marked (`lease_until` = now, a lease already over, so a consumer still claims them)
 * in the same statement that finds them, so an overlapping run does not nudge them again; a nudge lost again is resent
 * NUDGE_RESEND_AFTER_MS later, until the message is sent or given up (the message's own horizon is where this ends).
 */
export async function nudgeDueLanes({ db, queue, now }: { db: Database; queue: Queue; now: number }): Promise<number> {
  const at = new Date(now).toISOString();
  const due = sql`SELECT m.seq FROM ${endpointMessages} AS m JOIN ${endpoints} AS e ON e.id = m.endpoint_id AND e.status = 'enabled'
    WHERE ${servedHere(sql`e.merchant_id`)} AND m.status = 'pending' AND m.next_attempt_at <= ${new Date(now - NUDGE_GRACE_MS).toISOString()}
      AND (m.lease_until IS NULL OR m.lease_until < ${new Date(now - NUDGE_RESEND_AFTER_MS).toISOString()})
    ORDER BY m.next_attempt_at LIMIT ${LANES_PER_RUN}`;
  const rows = await db.all<LaneRow>(sql`UPDATE ${endpointMessages} SET lease_until = ${at} WHERE seq IN (${due})
    RETURNING merchant_id, endpoint_id, transaction_id`);
  const lanes = new Map(rows.map((row) => [`${row.endpoint_id}\u0000${row.transaction_id}`, nudgeOf(row)]));
  await sendAll(queue, [...lanes.values()]);
  return lanes.size;
}

/** Nudges the lanes of an endpoint enabled again, at most LANES_PER_RESUME (the sweep nudges the rest): its kept messages go out in order. */
export async function nudgeEndpointLanes({ db, queue, endpointId }: { db: Database; queue: Queue; endpointId: string }): Promise<number> {
  const rows = await db.all<LaneRow>(sql`SELECT DISTINCT merchant_id, endpoint_id, transaction_id FROM ${endpointMessages}
    WHERE endpoint_id = ${endpointId} AND status = 'pending' LIMIT ${LANES_PER_RESUME}`);
  await sendAll(queue, rows.map(nudgeOf));
  return rows.length;
}
