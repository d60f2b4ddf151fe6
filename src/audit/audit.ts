import { and, desc, eq, lt, or, type SQL } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "../db/client";
import { adminAudit } from "../db/schema";
import { decodePageCursor, keysetPage } from "../lib/cursor";

/** Every action the admin API records: one list, so the audit's `action` values are a closed set. */
export const ADMIN_ACTIONS = [
  "merchant.create",
  "merchant.update",
  "api_key.create",
  "api_key.revoke",
  "webhook_credential.rotate",
  "signing_secret.rotate",
  "dead_letter.redrive",
  "secrets.reseal",
  "status_api.write",
] as const;
export type AdminAction = (typeof ADMIN_ACTIONS)[number];

/** One admin action: what was done, to what (`merchant:acme`, `api_key:…`, `dead_letter:…`; never a secret), by which request. */
export interface AdminActionEntry {
  action: AdminAction;
  target: string;
  requestId: string;
}

/** The targets the admin API names in its audit entries. */
export const auditTarget = {
  merchant: (merchantId: string) => `merchant:${merchantId}`,
  apiKey: (merchantId: string, keyId: string) => `merchant:${merchantId}/api_key:${keyId}`,
  deadLetter: (id: string) => `dead_letter:${id}`,
  /** A status API write the admin token made as the merchant, e.g. `merchant:acme/POST /v1/batches`. */
  statusApi: (merchantId: string, method: string, path: string) => `merchant:${merchantId}/${method} ${path}`,
};

/** The insert that records an admin action, to run in the same D1 batch as the action itself. */
export function adminActionInsert(db: Database, entry: AdminActionEntry) {
  return db.insert(adminAudit).values({
    id: `aud_${crypto.randomUUID().replaceAll("-", "")}`,
    action: entry.action,
    target: entry.target,
    requestId: entry.requestId,
  });
}

/** Records admin actions right after them (one D1 batch), for actions that are not one D1 batch themselves. */
export async function recordAdminActions(db: Database, entries: AdminActionEntry[]): Promise<void> {
  const [first, ...rest] = entries.map((entry) => adminActionInsert(db, entry));
  if (first) await db.batch([first, ...rest]);
}

/** Records one admin action right after it, for an action that is not one D1 batch. */
export function recordAdminAction(db: Database, entry: AdminActionEntry): Promise<void> {
  return recordAdminActions(db, [entry]);
}

const auditCursor = z.strictObject({ a: z.string().min(1).max(64), i: z.string().min(1).max(64) });

/** The audit, newest first, in keyset pages of `limit` with a cursor. */
export async function listAdminActions(db: Database, cursor?: string, limit = 100) {
  const conditions: SQL[] = [];
  if (cursor !== undefined) {
    const after = decodePageCursor(cursor, auditCursor);
    const before = or(lt(adminAudit.at, after.a), and(eq(adminAudit.at, after.a), lt(adminAudit.id, after.i)));
    if (before) conditions.push(before);
  }
  const rows = await db
    .select()
    .from(adminAudit)
    .where(and(...conditions))
    .orderBy(desc(adminAudit.at), desc(adminAudit.id))
    .limit(limit + 1);
  const { page, nextCursor } = keysetPage(rows, limit, (row) => ({ a: row.at, i: row.id }));
  return {
    entries: page.map((row) => ({ at: row.at, action: row.action, target: row.target, request_id: row.requestId })),
    next_cursor: nextCursor,
  };
}
