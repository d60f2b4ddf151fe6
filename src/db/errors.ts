import { DrizzleQueryError } from "drizzle-orm/errors";

/** The longest storage reason kept for a log line or the admin's readiness answer. */
const MAX_REASON_LENGTH = 200;

/** Errors a D1 binding throws carry a `D1_…` code first (`D1_ERROR: no such table: merchants: SQLITE_ERROR`). */
const D1_MESSAGE = /^D1_[A-Z_]+:/;

/** The error and its causes, outermost first (at most a few: guards against a cycle of causes). */
function causeChain(error: unknown): unknown[] {
  const chain: unknown[] = [];
  // Ends at the first error without a cause, or after 5 links.
  for (let link: unknown = error; link !== undefined && chain.length < 5; link = link instanceof Error ? link.cause : undefined) {
    chain.push(link);
  }
  return chain;
}

/** Whether `error` is a failure of D1 (a shard unreachable, unmigrated, full…), wrapped by drizzle or not. */
export function isStorageError(error: unknown): boolean {
  return causeChain(error).some((link) => link instanceof DrizzleQueryError || (link instanceof Error && D1_MESSAGE.test(link.message)));
}

/**
 * A log-safe description of an error: for a failed query, D1's own message (the table, the constraint) and never
 * drizzle's, which quotes the statement's bound parameters (a key id, a merchant id, amounts).
 */
export function safeErrorMessage(error: unknown): string {
  const chain = causeChain(error);
  const d1 = chain.find((link): link is Error => link instanceof Error && D1_MESSAGE.test(link.message));
  if (d1) return d1.message.slice(0, MAX_REASON_LENGTH);
  if (chain.some((link) => link instanceof DrizzleQueryError)) return "D1 query failed";
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** As `safeErrorMessage`, but an error that is not a failed query is described by its message alone. */
export function safeErrorText(error: unknown): string {
  return isStorageError(error) ? safeErrorMessage(error) : error instanceof Error ? error.message : String(error);
}

/** Whether a write met a moving merchant's fence (the triggers of migration 0022): wait a moment and re-read the directory. */
export function isMerchantFenced(error: unknown): boolean {
  return causeChain(error).some((link) => link instanceof Error && link.message.includes("merchant_fenced"));
}
