import { and, eq, sql } from "drizzle-orm";
import { inList, insertJsonRows, runBatch } from "../db/bulk";
import type { Database } from "../db/client";
import { servedHere } from "../db/fence";
import { parkedDeliveries, parkedWakeups } from "../db/schema";
import { type ResumeParkedMessage, resumeParkedMessageV1, type WebhookMessage, webhookMessageV1 } from "../queue/messages";
import { sendAll } from "../queue/send";

/** Parked deliveries one wake-up takes at once: a consumer batch's worth, which one events list page can verify. */
export const RESUME_PAGE = 100;
/** A resume's claim on its rows: should its consumer die, the next wake-up takes them again after this. */
export const CLAIM_LEASE_MS = 5 * 60_000;
/** A wake-up waits the pacer's hint, never less than this... */
export const MIN_WAKEUP_SECONDS = 1;
/** ...nor more: a merchant's parked deliveries are looked at at least once a minute, by one message for all of them. */
export const MAX_WAKEUP_SECONDS = 60;

/** A parked delivery handed to the webhook consumer as if the queue had: its ack and retry are recorded, not sent. */
export class ParkedMessage implements Message<unknown> {
  readonly timestamp = new Date();
  readonly attempts = 1;
  outcome: "acked" | "retried" | null = null;
  constructor(
    readonly id: string,
    readonly body: WebhookMessage,
  ) {}
  ack(): void {
    this.outcome ??= "acked";
  }
  retry(): void {
    this.outcome ??= "retried";
  }
}

export const isParked = (message: Message<unknown>): message is ParkedMessage => message instanceof ParkedMessage;
export const isWakeup = (body: unknown): body is ResumeParkedMessage => resumeParkedMessageV1.safeParse(body).success;
export const wakeupOf = (merchantId: string): ResumeParkedMessage => ({ v: 1, kind: "resume_parked", merchant_id: merchantId });

/** The wake-up delay for a pacer hint (ms): the hint, within [MIN_WAKEUP_SECONDS, MAX_WAKEUP_SECONDS]. */
export const wakeupSeconds = (hintMs: number | null) =>
  Math.min(MAX_WAKEUP_SECONDS, Math.max(MIN_WAKEUP_SECONDS, Math.ceil((hintMs ?? 1_000) / 1000)));

/** Books a wake-up for each merchant unless one is pending and not overdue; answers those booked now (their message is due). */
function bookWakeups(merchantIds: readonly string[], at: string, due: string) {
  return merchantIds.map(
    (merchantId) =>
      sql`INSERT INTO ${parkedWakeups} (merchant_id, due_at) VALUES (${merchantId}, ${due})
      ON CONFLICT (merchant_id) DO UPDATE SET due_at = excluded.due_at WHERE parked_wakeups.due_at < ${at}
      RETURNING merchant_id`,
  );
}

/**
 * Parks deliveries (a re-parked one gives up its claim) and books one wake-up per merchant unless one is pending, in one
 * D1 batch; answers the merchants whose wake-up message the caller must now send, with `delaySeconds`.
 */
export async function parkDeliveries(
  db: Database,
  bodies: readonly WebhookMessage[],
  now: number,
  delaySeconds: number,
): Promise<string[]> {
  if (bodies.length === 0) return [];
  const at = new Date(now).toISOString();
  const rows = bodies.map((body) => ({
    merchant_id: body.merchant_id,
    delivery_id: body.delivery_id,
    body: JSON.stringify(body),
    parked_at: at,
  }));
  const merchantIds = [...new Set(bodies.map((body) => body.merchant_id))];
  const parked = insertJsonRows(parkedDeliveries, rows, sql`ON CONFLICT DO UPDATE SET claimed_until = NULL`);
  const results = await runBatch(db.$client, [
    ...parked,
    ...bookWakeups(merchantIds, at, new Date(now + delaySeconds * 1000).toISOString()),
  ]);
  return results.slice(parked.length).flatMap((result) => result.results.map((row) => String(row.merchant_id)));
}

/**
 * Takes the merchant's wake-up (a delivery parked from now on books a new one) and claims its oldest unclaimed parked
 * deliveries, at most RESUME_PAGE, for CLAIM_LEASE_MS.
 */
export async function claimParked(db: Database, merchantId: string, now: number): Promise<ParkedMessage[]> {
  const at = new Date(now).toISOString();
  await db.delete(parkedWakeups).where(eq(parkedWakeups.merchantId, merchantId));
  const rows = await db
    .update(parkedDeliveries)
    .set({ claimedUntil: new Date(now + CLAIM_LEASE_MS).toISOString() })
    .where(
      sql`(merchant_id, delivery_id) IN (SELECT merchant_id, delivery_id FROM ${parkedDeliveries}
        WHERE merchant_id = ${merchantId} AND (claimed_until IS NULL OR claimed_until < ${at})
        ORDER BY parked_at LIMIT ${RESUME_PAGE})`,
    )
    .returning({ deliveryId: parkedDeliveries.deliveryId, body: parkedDeliveries.body });
  return rows.flatMap(({ deliveryId, body }) => {
    const parsed = webhookMessageV1.safeParse(JSON.parse(body));
    return parsed.success ? [new ParkedMessage(deliveryId, parsed.data)] : [];
  });
}

/**
 * After a resume: deletes what the consumer acked and releases what it retried (the queue's own retry, for a parked row:
 * the next wake-up); a row it re-parked was released by `parkDeliveries`. When deliveries are still parked, books the
 * next wake-up (unless the re-parking did) and answers true when the caller must send its message.
 */
export async function finishResume(db: Database, merchantId: string, messages: readonly ParkedMessage[], now: number): Promise<boolean> {
  const acked = messages.filter((m) => m.outcome === "acked").map((m) => m.id);
  const retried = messages.filter((m) => m.outcome === "retried").map((m) => m.id);
  const mine = eq(parkedDeliveries.merchantId, merchantId);
  if (acked.length > 0) await db.delete(parkedDeliveries).where(and(mine, inList(parkedDeliveries.deliveryId, acked)));
  if (retried.length > 0)
    await db
      .update(parkedDeliveries)
      .set({ claimedUntil: null })
      .where(and(mine, inList(parkedDeliveries.deliveryId, retried)));
  const left = await db.select({ id: parkedDeliveries.deliveryId }).from(parkedDeliveries).where(mine).limit(1);
  if (left.length === 0) return false;
  const at = new Date(now).toISOString();
  const [booked] = await runBatch(db.$client, bookWakeups([merchantId], at, new Date(now + MIN_WAKEUP_SECONDS * 1000).toISOString()));
  return (booked?.results.length ?? 0) > 0;
}

/**
 * Merchants with parked deliveries nobody will wake (their wake-up message was lost, or dead-lettered): unclaimed rows
 * parked over a lease ago, and no wake-up booked or one overdue by a lease. The cron books and sends theirs.
 */
export async function orphanedParking(db: Database, now: number): Promise<string[]> {
  const at = new Date(now).toISOString();
  const stale = new Date(now - CLAIM_LEASE_MS).toISOString();
  const rows = await db.all<{ merchant_id: string }>(
    sql`SELECT DISTINCT p.merchant_id FROM ${parkedDeliveries} AS p LEFT JOIN ${parkedWakeups} AS w ON w.merchant_id = p.merchant_id
      WHERE (p.claimed_until IS NULL OR p.claimed_until < ${at}) AND p.parked_at < ${stale} AND (w.due_at IS NULL OR w.due_at < ${stale})
        AND ${servedHere(sql`p.merchant_id`)}`,
  );
  return rows.map((row) => row.merchant_id);
}

/** The cron's repair: books and sends a wake-up, due now, for every merchant of `orphanedParking`; answers how many. */
export async function wakeOrphanedParking({ db, queue, now }: { db: Database; queue: Queue; now: number }): Promise<number> {
  const merchantIds = await orphanedParking(db, now);
  if (merchantIds.length === 0) return 0;
  // Overrides any booked wake-up (all of them are overdue by a lease here).
  await runBatch(db.$client, bookWakeups(merchantIds, new Date(now + CLAIM_LEASE_MS).toISOString(), new Date(now).toISOString()));
  await sendAll(queue, merchantIds.map(wakeupOf));
  return merchantIds.length;
}
