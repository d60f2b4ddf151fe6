import { and, desc, eq } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "../db/client";
import { afterRow } from "../db/keyset";
import { endpointMessages, MESSAGE_STATUSES, type MessageStatus } from "../db/schema";
import { ApiError } from "../errors";
import { decodePageCursor, keysetPage } from "../lib/cursor";
import { findEndpointRow } from "./endpoints";
import type { MessageRow } from "./outbox";

/** A message as `GET /v1/endpoints/{id}/messages` lists it (contract.md). */
export function presentMessage(row: MessageRow) {
  return {
    id: row.id,
    type: row.type,
    sequence: row.sequence,
    transaction_id: row.transactionId,
    status: row.status,
    attempts: row.attempts,
    last_http_status: row.lastHttpStatus,
    created_at: row.createdAt,
    delivered_at: row.deliveredAt,
  };
}

/** The cursor carries the filters of the first request: a page with other filters would mix two lists. */
const messageCursor = z.strictObject({
  c: z.string().min(1).max(64),
  s: z.int(),
  t: z.string().max(128).nullable(),
  st: z.enum(MESSAGE_STATUSES).nullable(),
});

export interface MessageQuery {
  transaction_id?: string;
  status?: MessageStatus;
  cursor?: string;
  limit: number;
}

/**
 * One page of an endpoint's messages, newest first (`created_at`, then insertion order), filtered by transaction and
 * status, from the `endpoint_messages_created` index; another merchant's endpoint is a 404.
 */
export async function listMessages({
  db,
  merchantId,
  endpointId,
  query,
}: {
  db: Database;
  merchantId: string;
  endpointId: string;
  query: MessageQuery;
}) {
  await findEndpointRow({ db, merchantId, endpointId });
  const after = query.cursor === undefined ? undefined : decodePageCursor(query.cursor, messageCursor);
  const transactionId = after ? after.t : (query.transaction_id ?? null);
  const status = after ? after.st : (query.status ?? null);
  if (after && ((query.transaction_id ?? transactionId) !== transactionId || (query.status ?? status) !== status)) {
    throw new ApiError(
      "invalid_cursor",
      "cursor belongs to a list with other filters; repeat the first request's filters or leave them out",
    );
  }
  const rows = await db
    .select()
    .from(endpointMessages)
    .where(
      and(
        eq(endpointMessages.endpointId, endpointId),
        transactionId === null ? undefined : eq(endpointMessages.transactionId, transactionId),
        status === null ? undefined : eq(endpointMessages.status, status),
        afterRow("desc", [endpointMessages.createdAt, endpointMessages.seq], after && [after.c, after.s]),
      ),
    )
    .orderBy(desc(endpointMessages.createdAt), desc(endpointMessages.seq))
    .limit(query.limit + 1);
  const { page, nextCursor } = keysetPage(rows, query.limit, (row) => ({ c: row.createdAt, s: row.seq, t: transactionId, st: status }));
  return { messages: page.map(presentMessage), next_cursor: nextCursor };
}
