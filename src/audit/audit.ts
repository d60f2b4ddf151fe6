import { desc } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "../db/client";
import { afterRow } from "../db/keyset";
import type { AdminAuditRow } from "../db/rows";
import { adminAudit } from "../db/schema";

/** Every action the admin API records: one list, so the audit's `action` values are a closed set. */
export const ADMIN_ACTIONS = [
  "merchant.create",
  "merchant.update",
  "api_key.create",
  "api_key.revoke",
  "webhook_credential.rotate",
  "signing_secret.rotate",
  "alert_secret.rotate",
  "dead_letter.redrive",
  "secrets.reseal",
  "merchant.move",
  "status_api.write",
] as const;
export type AdminAction = (typeof ADMIN_ACTIONS)[number];

/** One admin action: what was done, and to what (`merchant:acme`, `api_key:…`, `dead_letter:…`; never a secret). */
export interface AdminActionEntry {
  action: AdminAction;
  target: string;
}

/** The targets the admin API names in its audit entries. */
export const auditTarget = {
  merchant: (merchantId: string) => `merchant:${merchantId}`,
  apiKey: (merchantId: string, keyId: string) => `merchant:${merchantId}/api_key:${keyId}`,
  deadLetter: (id: string) => `dead_letter:${id}`,
  reseal: (jobId: string) => `reseal:${jobId}`,
  /** A status API write the admin token made as the merchant, e.g. `merchant:acme/POST /v1/batches`. */
  statusApi: (merchantId: string, method: string, path: string) => `merchant:${merchantId}/${method} ${path}`,
};

/** Records the admin actions one request made (one D1 batch; none, nothing), after them; called by the admin middleware only. */
export async function recordAdminActions({
  db,
  requestId,
  actions,
}: {
  db: Database;
  requestId: string;
  actions: readonly AdminActionEntry[];
}): Promise<void> {
  const [first, ...rest] = actions.map((entry) =>
    db.insert(adminAudit).values({
      id: `aud_${crypto.randomUUID().replaceAll("-", "")}`,
      action: entry.action,
      target: entry.target,
      requestId,
    }),
  );
  if (first) await db.batch([first, ...rest]);
}

/** Where an audit page stopped: the last entry's (at, id). */
export const auditCursor = z.strictObject({ a: z.string().min(1).max(64), i: z.string().min(1).max(64) });
export type AuditPosition = z.infer<typeof auditCursor>;

/** The audit's entries strictly older than `after` (all of them without), newest first, at most `limit`: by `admin_audit_at`. */
export function auditRowsBefore({ db, after, limit }: { db: Database; after?: AuditPosition; limit: number }) {
  return db
    .select()
    .from(adminAudit)
    .where(after && afterRow("desc", [adminAudit.at, adminAudit.id], [after.a, after.i]))
    .orderBy(desc(adminAudit.at), desc(adminAudit.id))
    .limit(limit);
}

/** An audit row as `GET /admin/audit` shows it. */
export const presentAuditEntry = (row: AdminAuditRow) => ({
  at: row.at,
  action: row.action,
  target: row.target,
  request_id: row.requestId,
});
