import { and, asc, count, eq, gt, isNotNull, or, sql } from "drizzle-orm";
import { type BatchStatement, inList, runBatch } from "../db/bulk";
import type { Database } from "../db/client";
import type { MerchantRow } from "../db/rows";
import { endpoints, merchants, resealJobs } from "../db/schema";
import { shardsOf } from "../db/shards";
import { type EndpointRow, endpointSecretContext } from "../endpoints/secrets";
import type { AppConfig, AppEnv } from "../env";
import { ApiError } from "../errors";
import { log } from "../lib/log";
import { secretContext } from "../merchants/merchants";
import { currentKeyId, openSecret, type SealedSecret, sealSecret } from "../security/vault";

/** Merchants re-sealed per queue message: one D1 batch each, so a page is all or nothing. */
const MERCHANTS_PER_PAGE = 50;

/** The message that carries a re-seal job on the batch queue, one page of merchants at a time (queue/messages.ts). */
type ResealMessage = { v: 1; kind: "reseal"; job_id: string; shard?: number };

type SecretColumn =
  | "smartRouterSecretCiphertext"
  | "smartRouterSecretKeyId"
  | "fulfillmentSecretCiphertext"
  | "fulfillmentSecretKeyId"
  | "fulfillmentSecretPreviousCiphertext"
  | "fulfillmentSecretPreviousKeyId"
  | "alertSecretCiphertext"
  | "alertSecretKeyId"
  | "alertSecretPreviousCiphertext"
  | "alertSecretPreviousKeyId";

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
  return [...secrets, ...alertSecretsOf(row)];
}

/** The merchant's sealed alert secrets (merchants/alert-secret.ts), current and previous, those it has. */
function alertSecretsOf(row: MerchantRow) {
  const pairs = [
    { ciphertext: row.alertSecretCiphertext, keyId: row.alertSecretKeyId, columns: ["alertSecretCiphertext", "alertSecretKeyId"] },
    {
      ciphertext: row.alertSecretPreviousCiphertext,
      keyId: row.alertSecretPreviousKeyId,
      columns: ["alertSecretPreviousCiphertext", "alertSecretPreviousKeyId"],
    },
  ] as const;
  return pairs.flatMap(({ ciphertext, keyId, columns }) =>
    ciphertext && keyId
      ? [{ sealed: { ciphertext, keyId }, context: secretContext.alert(row.id), columns: { ciphertext: columns[0], keyId: columns[1] } }]
      : [],
  );
}

type JobRow = typeof resealJobs.$inferSelect;

/**
 * The job as the admin API shows it, from its row on each shard (one job re-seals every shard's merchants, each part
 * walked by its own messages): failed if a part failed, running while a part runs, counts summed.
 */
function presentJob(parts: readonly JobRow[]) {
  const status: JobRow["status"] = parts.some((part) => part.status === "failed")
    ? "failed"
    : parts.some((part) => part.status === "running")
      ? "running"
      : "completed";
  const finished = parts.map((part) => part.finishedAt);
  const error = parts.find((part) => part.error)?.error;
  return {
    id: parts[0]?.id ?? "",
    status,
    total: parts.reduce((sum, part) => sum + part.total, 0),
    done: parts.reduce((sum, part) => sum + part.done, 0),
    started_at: parts.map((part) => part.startedAt).sort()[0] ?? null,
    finished_at: status === "running" || finished.includes(null) ? null : (finished.sort().at(-1) ?? null),
    ...(error ? { error } : {}),
  };
}

/** Starts a re-seal of every sealed secret under the current SECRETS_KEY: one part per shard, its pages on the batch queue. */
export async function startReseal({ env, queue }: { env: AppEnv; queue: Queue }): Promise<ReturnType<typeof presentJob>> {
  const id = `rsl_${crypto.randomUUID().replaceAll("-", "")}`;
  const parts = await Promise.all(
    shardsOf(env).map(async ({ index, db }) => {
      const [counted] = await db.select({ n: count() }).from(merchants);
      const row = await db
        .insert(resealJobs)
        .values({ id, status: "running", total: counted?.n ?? 0 })
        .returning()
        .get();
      await queue.send({ v: 1, kind: "reseal", job_id: id, shard: index } satisfies ResealMessage, { contentType: "json" });
      return row;
    }),
  );
  return presentJob(parts);
}

/** A re-seal job, its parts on every shard together; unknown ids are a 404. */
export async function findReseal({ env, jobId }: { env: AppEnv; jobId: string }) {
  const parts = await Promise.all(shardsOf(env).map(({ db }) => db.select().from(resealJobs).where(eq(resealJobs.id, jobId)).get()));
  const found = parts.filter((part) => part !== undefined);
  if (found.length === 0) throw new ApiError("not_found", `re-seal job ${jobId} not found`);
  return presentJob(found);
}

/**
 * One UPDATE per secret of the page sealed under another key, re-sealed under the current one; compare-and-set on the
 * ciphertext it replaces, so a rotation or PATCH that wrote a new secret meanwhile keeps it, and a page run twice
 * re-seals nothing twice.
 */
async function resealStatements({ db, config, page }: { db: Database; config: AppConfig; page: readonly MerchantRow[] }) {
  const current = await currentKeyId(config);
  const statements: BatchStatement[] = [];
  for (const row of page) {
    for (const { sealed, context, columns } of sealedSecretsOf(row)) {
      if (sealed.keyId === current) continue;
      const resealed = await sealSecret(config, await openSecret(config, sealed, context), context);
      const changes: Partial<Record<SecretColumn, string>> = {};
      changes[columns.ciphertext] = resealed.ciphertext;
      changes[columns.keyId] = resealed.keyId;
      statements.push(
        db
          .update(merchants)
          .set(changes)
          .where(and(eq(merchants.id, row.id), eq(merchants[columns.ciphertext], sealed.ciphertext))),
      );
    }
  }
  return statements;
}

/**
 * One UPDATE per endpoint of the page's merchants holding a secret (current, or the one a rotation replaced) sealed under
 * another key: both re-sealed at once, compare-and-set on both ciphertexts it read, so a rotation meanwhile keeps its
 * secrets (the next job re-seals what it left under the old key) and a page run twice re-seals nothing twice.
 */
async function resealEndpointStatements({ db, config, page }: { db: Database; config: AppConfig; page: readonly MerchantRow[] }) {
  if (page.length === 0) return [];
  const current = await currentKeyId(config);
  const rows = await db
    .select()
    .from(endpoints)
    .where(
      inList(
        endpoints.merchantId,
        page.map((row) => row.id),
      ),
    );
  const statements: BatchStatement[] = [];
  for (const row of rows) {
    const changes = await resealedEndpointSecrets({ config, row, current });
    if (!changes) continue;
    const previousAsRead = row.previousSecretCiphertext
      ? eq(endpoints.previousSecretCiphertext, row.previousSecretCiphertext)
      : sql`${endpoints.previousSecretCiphertext} IS NULL`;
    statements.push(
      db
        .update(endpoints)
        .set(changes)
        .where(and(eq(endpoints.id, row.id), eq(endpoints.secretCiphertext, row.secretCiphertext), previousAsRead)),
    );
  }
  return statements;
}

/** The endpoint's secret columns re-sealed under the current key, those already under it left out; null when none is left. */
async function resealedEndpointSecrets({ config, row, current }: { config: AppConfig; row: EndpointRow; current: string }) {
  const context = endpointSecretContext(row.merchantId, row.id);
  const reseal = async (sealed: SealedSecret) => sealSecret(config, await openSecret(config, sealed, context), context);
  const changes: Partial<Pick<EndpointRow, "secretCiphertext" | "secretKeyId" | "previousSecretCiphertext" | "previousSecretKeyId">> = {};
  if (row.secretKeyId !== current) {
    const sealed = await reseal({ ciphertext: row.secretCiphertext, keyId: row.secretKeyId });
    changes.secretCiphertext = sealed.ciphertext;
    changes.secretKeyId = sealed.keyId;
  }
  if (row.previousSecretCiphertext && row.previousSecretKeyId && row.previousSecretKeyId !== current) {
    const sealed = await reseal({ ciphertext: row.previousSecretCiphertext, keyId: row.previousSecretKeyId });
    changes.previousSecretCiphertext = sealed.ciphertext;
    changes.previousSecretKeyId = sealed.keyId;
  }
  return Object.keys(changes).length > 0 ? changes : null;
}

/**
 * Moves the job past a page: cursor, progress and, on a short page, completion. Compare-and-set on the job still
 * running from the cursor the page started at, so of two runs of one page (a duplicated or redelivered message) exactly
 * one counts it, and a job failed meanwhile stays failed.
 */
function advanceJob({ db, job, page }: { db: Database; job: JobRow; page: readonly MerchantRow[] }) {
  const finished = page.length < MERCHANTS_PER_PAGE;
  const statement = db
    .update(resealJobs)
    .set({
      cursor: page.at(-1)?.id ?? job.cursor,
      done: sql`${resealJobs.done} + ${page.length}`,
      ...(finished ? { status: "completed" as const, finishedAt: new Date().toISOString() } : {}),
    })
    .where(
      and(
        eq(resealJobs.id, job.id),
        eq(resealJobs.status, "running"),
        job.cursor ? eq(resealJobs.cursor, job.cursor) : sql`${resealJobs.cursor} IS NULL`,
      ),
    );
  return { finished, statement };
}

/**
 * Re-seals the next page of merchants after the job's cursor: every secret sealed by another key is opened (the
 * previous key still decrypts it) and sealed again under the current one, and the cursor and progress move in the same
 * D1 batch, so a crash or a redelivered message resumes after the last committed page. The run that loses the job's
 * compare-and-set to another run of the same page sends no next page: the winner did. Ends when a page comes back short.
 */
export async function resealPage({
  db,
  config,
  queue,
  message,
}: {
  db: Database;
  config: AppConfig;
  queue: Queue;
  message: ResealMessage;
}): Promise<void> {
  const job = await db.select().from(resealJobs).where(eq(resealJobs.id, message.job_id)).get();
  if (job?.status !== "running") return;
  const page = await db
    .select()
    .from(merchants)
    .where(job.cursor ? gt(merchants.id, job.cursor) : undefined)
    .orderBy(asc(merchants.id))
    .limit(MERCHANTS_PER_PAGE);
  const { finished, statement } = advanceJob({ db, job, page });
  const results = await runBatch(db.$client, [
    ...(await resealStatements({ db, config, page })),
    ...(await resealEndpointStatements({ db, config, page })),
    statement,
  ]);
  if ((results.at(-1)?.meta.changes ?? 0) === 0) {
    log("info", "reseal.page_already_counted", { job_id: job.id, shard: message.shard ?? 0, cursor: job.cursor });
    return;
  }
  if (!finished) await queue.send(message, { contentType: "json" });
}

/**
 * How many merchants of every shard still hold a secret sealed under another key, their endpoints' included (0 before
 * dropping SECRETS_KEY_PREVIOUS).
 */
export async function secretsUnderOldKeys({ env, config }: { env: AppEnv; config: AppConfig }): Promise<number> {
  const perShard = await Promise.all(shardsOf(env).map(({ db }) => merchantsUnderOldKeys(db, config)));
  return perShard.reduce((sum, n) => sum + n, 0);
}

async function merchantsUnderOldKeys(db: Database, config: AppConfig): Promise<number> {
  const current = await currentKeyId(config);
  const [row] = await db
    .select({ n: count() })
    .from(merchants)
    .where(
      or(
        sql`${merchants.smartRouterSecretKeyId} <> ${current}`,
        sql`${merchants.fulfillmentSecretKeyId} <> ${current}`,
        and(isNotNull(merchants.fulfillmentSecretPreviousKeyId), sql`${merchants.fulfillmentSecretPreviousKeyId} <> ${current}`),
        and(isNotNull(merchants.alertSecretKeyId), sql`${merchants.alertSecretKeyId} <> ${current}`),
        and(isNotNull(merchants.alertSecretPreviousKeyId), sql`${merchants.alertSecretPreviousKeyId} <> ${current}`),
        sql`EXISTS (SELECT 1 FROM ${endpoints} AS e WHERE e.merchant_id = ${merchants.id}
          AND (e.secret_key_id <> ${current} OR e.previous_secret_key_id <> ${current}))`,
      ),
    );
  return row?.n ?? 0;
}

/** Stops a job whose page failed, with the reason; the pages before it stay re-sealed, and a new job resumes nothing. */
export async function failReseal({ db, jobId, reason }: { db: Database; jobId: string; reason: string }): Promise<void> {
  await db
    .update(resealJobs)
    .set({ status: "failed", error: reason, finishedAt: new Date().toISOString() })
    .where(and(eq(resealJobs.id, jobId), eq(resealJobs.status, "running")));
}
