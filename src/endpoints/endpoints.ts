import { and, desc, eq, sql } from "drizzle-orm";
import { z } from "zod";
import { insertJsonRows } from "../db/bulk";
import type { Database } from "../db/client";
import { afterRow } from "../db/keyset";
import { endpointMessages, endpointReplays, endpoints } from "../db/schema";
import type { AppConfig } from "../env";
import { ApiError } from "../errors";
import { decodePageCursor, keysetPage } from "../lib/cursor";
import { requireAllowedFulfillmentUrl } from "../merchants/merchants";
import { type EndpointRow, issueEndpointSecret } from "./secrets";

/** Endpoints one merchant may have (contract.md, "Endpoints"). */
export const MAX_ENDPOINTS = 10;
/** How long messages carry the replaced secret's signature too, unless the rotation says otherwise. */
export const DEFAULT_SECRET_OVERLAP_HOURS = 24;

/** What a merchant sends to create an endpoint (validated by src/routes/endpoints.ts). */
export interface CreateEndpointInput {
  url: string;
  events: string[];
  description?: string;
}

/** What a merchant may change: `status` only between `enabled` and `paused` (or from `disabled` back to `enabled`). */
export interface UpdateEndpointInput {
  url?: string;
  events?: string[];
  description?: string;
  status?: "enabled" | "paused";
}

/** The endpoint as merchants see it: never its secret. */
export function presentEndpoint(row: EndpointRow) {
  return {
    id: row.id,
    url: row.url,
    events: row.events,
    description: row.description,
    status: row.status,
    created_at: row.createdAt,
  };
}

/** One of the merchant's endpoints; another merchant's (or none) is a plain 404. */
export async function findEndpointRow({ db, merchantId, endpointId }: { db: Database; merchantId: string; endpointId: string }) {
  const row = await db
    .select()
    .from(endpoints)
    .where(and(eq(endpoints.id, endpointId), eq(endpoints.merchantId, merchantId)))
    .get();
  if (!row) throw new ApiError("not_found", `endpoint ${endpointId} not found`);
  return row;
}

/**
 * Creates an endpoint, its signing secret shown here and never again. The place is taken by one conditional insert
 * (`… WHERE (count) < MAX_ENDPOINTS`): D1 runs one write at a time, so two concurrent POSTs at 9 cannot both pass.
 */
export async function createEndpoint({
  db,
  config,
  merchantId,
  input,
}: {
  db: Database;
  config: AppConfig;
  merchantId: string;
  input: CreateEndpointInput;
}) {
  requireAllowedFulfillmentUrl(config, input.url, "url");
  const id = `ep_${crypto.randomUUID().replaceAll("-", "")}`;
  const { secret, sealed } = await issueEndpointSecret(config, merchantId, id);
  const row = {
    id,
    merchant_id: merchantId,
    url: input.url,
    events: JSON.stringify([...new Set(input.events)]),
    description: input.description ?? "",
    status: "enabled",
    secret_ciphertext: sealed.ciphertext,
    secret_key_id: sealed.keyId,
  };
  const count = sql`(SELECT count(*) FROM ${endpoints} WHERE ${endpoints.merchantId} = ${merchantId})`;
  const [statement] = insertJsonRows(endpoints, [row], sql`AND ${count} < ${MAX_ENDPOINTS} RETURNING id`);
  if (!statement) throw new Error("insertJsonRows made no statement for one row");
  if ((await db.all(statement)).length === 0) {
    throw new ApiError("conflict", `at most ${MAX_ENDPOINTS} endpoints per merchant; delete one (DELETE /v1/endpoints/{id}) first`);
  }
  return { endpoint: presentEndpoint(await findEndpointRow({ db, merchantId, endpointId: id })), signing_secret: secret };
}

const endpointCursor = z.strictObject({ c: z.string().min(1).max(64), i: z.string().min(1).max(64) });

/** The merchant's endpoints, newest first, in keyset pages (at most MAX_ENDPOINTS exist, but the list pages like every list). */
export async function listEndpoints({
  db,
  merchantId,
  cursor,
  limit,
}: {
  db: Database;
  merchantId: string;
  cursor?: string;
  limit: number;
}) {
  const after = cursor === undefined ? undefined : decodePageCursor(cursor, endpointCursor);
  const rows = await db
    .select()
    .from(endpoints)
    .where(and(eq(endpoints.merchantId, merchantId), afterRow("desc", [endpoints.createdAt, endpoints.id], after && [after.c, after.i])))
    .orderBy(desc(endpoints.createdAt), desc(endpoints.id))
    .limit(limit + 1);
  const { page, nextCursor } = keysetPage(rows, limit, (row) => ({ c: row.createdAt, i: row.id }));
  return { endpoints: page.map(presentEndpoint), next_cursor: nextCursor };
}

/** The columns an update writes: a move to `enabled` also forgets the failures that disabled it. */
function changesOf(input: UpdateEndpointInput) {
  return {
    ...(input.url !== undefined ? { url: input.url } : {}),
    ...(input.events !== undefined ? { events: [...new Set(input.events)] } : {}),
    ...(input.description !== undefined ? { description: input.description } : {}),
    ...(input.status !== undefined ? { status: input.status } : {}),
    ...(input.status === "enabled" ? { failingSince: null, disabledAt: null } : {}),
    updatedAt: new Date().toISOString(),
  };
}

/**
 * Updates an endpoint; answers it and whether it was resumed (its status moved to `enabled` from `paused` or
 * `disabled`: its kept messages are then due, in order). Compare-and-set on the status it was read with, so a
 * concurrent disable is not silently overwritten by an edit of the description.
 */
export async function updateEndpoint({
  db,
  config,
  merchantId,
  endpointId,
  input,
}: {
  db: Database;
  config: AppConfig;
  merchantId: string;
  endpointId: string;
  input: UpdateEndpointInput;
}) {
  if (input.url !== undefined) requireAllowedFulfillmentUrl(config, input.url, "url");
  const before = await findEndpointRow({ db, merchantId, endpointId });
  const row = await db
    .update(endpoints)
    .set(changesOf(input))
    .where(and(eq(endpoints.id, endpointId), eq(endpoints.merchantId, merchantId), eq(endpoints.status, before.status)))
    .returning()
    .get();
  if (!row) throw new ApiError("conflict", `endpoint ${endpointId} changed concurrently; read it again and retry`);
  return { endpoint: presentEndpoint(row), resumed: before.status !== "enabled" && row.status === "enabled" };
}

/** Deletes an endpoint with its messages and replays, in one D1 batch: nothing more is sent to it. */
export async function deleteEndpoint({ db, merchantId, endpointId }: { db: Database; merchantId: string; endpointId: string }) {
  await findEndpointRow({ db, merchantId, endpointId });
  await db.batch([
    db.delete(endpointMessages).where(eq(endpointMessages.endpointId, endpointId)),
    db.delete(endpointReplays).where(eq(endpointReplays.endpointId, endpointId)),
    db.delete(endpoints).where(and(eq(endpoints.id, endpointId), eq(endpoints.merchantId, merchantId))),
  ]);
}

/**
 * A new signing secret (shown once); the replaced one keeps signing for `overlapHours`, so messages carry both `v1,`
 * signatures meanwhile. Compare-and-set on the sealed secret it replaces: of two concurrent rotations one wins, the
 * other is a 409 and changes nothing.
 */
export async function rotateEndpointSecret({
  db,
  config,
  merchantId,
  endpointId,
  overlapHours = DEFAULT_SECRET_OVERLAP_HOURS,
}: {
  db: Database;
  config: AppConfig;
  merchantId: string;
  endpointId: string;
  overlapHours?: number;
}) {
  const row = await findEndpointRow({ db, merchantId, endpointId });
  const { secret, sealed } = await issueEndpointSecret(config, merchantId, endpointId);
  const previousValidUntil = new Date(Date.now() + overlapHours * 3_600_000).toISOString();
  const rotated = await db
    .update(endpoints)
    .set({
      secretCiphertext: sealed.ciphertext,
      secretKeyId: sealed.keyId,
      previousSecretCiphertext: row.secretCiphertext,
      previousSecretKeyId: row.secretKeyId,
      previousSecretValidUntil: previousValidUntil,
      updatedAt: new Date().toISOString(),
    })
    .where(and(eq(endpoints.id, endpointId), eq(endpoints.secretCiphertext, row.secretCiphertext)))
    .returning({ id: endpoints.id })
    .get();
  if (!rotated) throw new ApiError("conflict", `signing secret of endpoint ${endpointId} was changed concurrently; try again`);
  return { signing_secret: secret, previous_valid_until: previousValidUntil };
}
