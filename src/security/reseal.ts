import { and, asc, count, eq, gt, isNotNull, or, sql } from "drizzle-orm";
import { type BatchStatement, runBatch } from "../db/bulk";
import type { Database } from "../db/client";
import { merchants, resealJobs } from "../db/schema";
import type { AppConfig } from "../env";
import { ApiError } from "../errors";
import { secretContext } from "../merchants/merchants";
import { currentKeyId, openSecret, type SealedSecret, sealSecret } from "./vault";

/** Merchants re-sealed per queue message: one D1 batch each, so a page is all or nothing. */
const MERCHANTS_PER_PAGE = 50;

/** The message that carries a re-seal job on the batch queue, one page of merchants at a time (batches/messages.ts). */
type ResealMessage = { v: 1; kind: "reseal"; job_id: string };

type MerchantRow = typeof merchants.$inferSelect;
type SecretColumn =
  | "smartRouterSecretCiphertext"
  | "smartRouterSecretKeyId"
  | "fulfillmentSecretCiphertext"
  | "fulfillmentSecretKeyId"
  | "fulfillmentSecretPreviousCiphertext"
  | "fulfillmentSecretPreviousKeyId";

/** Each sealed secret of a merchant, with the columns it lives in. */
function sealedSecretsOf(row: MerchantRow) {
  const secrets: { sealed: SealedSecret; context: string; columns: { ciphertext: SecretColumn; keyId: SecretColumn } }[] = [
    {
      sealed: { ciphertext: row.smartRouterSecretCiphertext, keyId: row.smartRouterSecretKeyId },
      context: secretContext.smartRouter(row.id),
      columns: { ciphertext: "smartRouterSecretCiphertext", keyId: "smartRouterSecretKeyId" },
    },
    {
      sealed: { ciphertext: row.fulfillmentSecretCiphertext, keyId: row.fulfillmentSecretKeyId },
      context: secretContext.fulfillment(row.id),
      columns: { ciphertext: "fulfillmentSecretCiphertext", keyId: "fulfillmentSecretKeyId" },
    },
  ];
  if (row.fulfillmentSecretPreviousCiphertext && row.fulfillmentSecretPreviousKeyId) {
    secrets.push({
      sealed: { ciphertext: row.fulfillmentSecretPreviousCiphertext, keyId: row.fulfillmentSecretPreviousKeyId },
      context: secretContext.fulfillment(row.id),
      columns: { ciphertext: "fulfillmentSecretPreviousCiphertext", keyId: "fulfillmentSecretPreviousKeyId" },
    });
  }
  return secrets;
}

/** The job as the admin API shows it. */
function presentJob(row: typeof resealJobs.$inferSelect) {
  return {
    id: row.id,
    status: row.status,
    total: row.total,
    done: row.done,
    started_at: row.startedAt,
    finished_at: row.finishedAt,
    ...(row.error ? { error: row.error } : {}),
  };
}

/** Starts a re-seal of every sealed secret under the current SECRETS_KEY; its pages run on the batch queue. */
export async function startReseal(db: Database, queue: Queue): Promise<ReturnType<typeof presentJob>> {
  const [counted] = await db.select({ n: count() }).from(merchants);
  const id = `rsl_${crypto.randomUUID().replaceAll("-", "")}`;
  const row = await db
    .insert(resealJobs)
    .values({ id, status: "running", total: counted?.n ?? 0 })
    .returning()
    .get();
  await queue.send({ v: 1, kind: "reseal", job_id: id } satisfies ResealMessage, { contentType: "json" });
  return presentJob(row);
}

/** A re-seal job; unknown ids are a 404. */
export async function findReseal(db: Database, jobId: string) {
  const row = await db.select().from(resealJobs).where(eq(resealJobs.id, jobId)).get();
  if (!row) throw new ApiError("not_found", `re-seal job ${jobId} not found`);
  return presentJob(row);
}

/**
 * Re-seals the next page of merchants after the job's cursor: every secret sealed by another key is opened (the
 * previous key still decrypts it) and sealed again under the current one, and the cursor and progress move in the same
 * D1 batch, so a crash or a redelivered message resumes after the last committed page and re-seals nothing twice
 * (a secret already under the current key is left as it is). Ends when a page comes back short.
 */
export async function resealPage(db: Database, config: AppConfig, queue: Queue, message: ResealMessage): Promise<void> {
  const job = await db.select().from(resealJobs).where(eq(resealJobs.id, message.job_id)).get();
  if (job?.status !== "running") return;
  const current = await currentKeyId(config);
  const page = await db
    .select()
    .from(merchants)
    .where(job.cursor ? gt(merchants.id, job.cursor) : undefined)
    .orderBy(asc(merchants.id))
    .limit(MERCHANTS_PER_PAGE);
  const statements: BatchStatement[] = [];
  for (const row of page) {
    const changes: Partial<Record<SecretColumn, string>> = {};
    for (const secret of sealedSecretsOf(row)) {
      if (secret.sealed.keyId === current) continue;
      const resealed = await sealSecret(config, await openSecret(config, secret.sealed, secret.context), secret.context);
      changes[secret.columns.ciphertext] = resealed.ciphertext;
      changes[secret.columns.keyId] = resealed.keyId;
    }
    if (Object.keys(changes).length > 0) statements.push(db.update(merchants).set(changes).where(eq(merchants.id, row.id)));
  }
  const last = page.at(-1);
  const finished = page.length < MERCHANTS_PER_PAGE;
  statements.push(
    db
      .update(resealJobs)
      .set({
        cursor: last?.id ?? job.cursor,
        done: sql`${resealJobs.done} + ${page.length}`,
        ...(finished ? { status: "completed" as const, finishedAt: new Date().toISOString() } : {}),
      })
      // Only from where this page started: a duplicated message cannot count a page twice.
      .where(and(eq(resealJobs.id, job.id), job.cursor ? eq(resealJobs.cursor, job.cursor) : sql`${resealJobs.cursor} IS NULL`)),
  );
  await runBatch(db.$client, statements);
  if (!finished) await queue.send(message, { contentType: "json" });
}

/** Whether any secret is still sealed under a key other than the current one (what must be true before dropping SECRETS_KEY_PREVIOUS). */
export async function secretsUnderOldKeys(db: Database, config: AppConfig): Promise<number> {
  const current = await currentKeyId(config);
  const [row] = await db
    .select({ n: count() })
    .from(merchants)
    .where(
      or(
        sql`${merchants.smartRouterSecretKeyId} <> ${current}`,
        sql`${merchants.fulfillmentSecretKeyId} <> ${current}`,
        and(isNotNull(merchants.fulfillmentSecretPreviousKeyId), sql`${merchants.fulfillmentSecretPreviousKeyId} <> ${current}`),
      ),
    );
  return row?.n ?? 0;
}

/** Stops a job whose page failed, with the reason; the pages before it stay re-sealed, and a new job resumes nothing. */
export async function failReseal(db: Database, jobId: string, reason: string): Promise<void> {
  await db
    .update(resealJobs)
    .set({ status: "failed", error: reason, finishedAt: new Date().toISOString() })
    .where(and(eq(resealJobs.id, jobId), eq(resealJobs.status, "running")));
}
