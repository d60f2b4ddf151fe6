/** Why a Smart Router call failed; callers branch on `kind`, never on messages. */
export type SmartRouterErrorKind =
  | "not_found"
  | "authentication"
  | "validation"
  | "declined"
  | "rate_limited"
  | "server"
  | "network"
  | "invalid_response";

/** A failed Smart Router call, typed by `kind`. */
export class SmartRouterError extends Error {
  readonly kind: SmartRouterErrorKind;
  readonly status: number | null;
  readonly errorType: string | null;
  /** A retry hint from Retry-After or our own limiter, when there is one. */
  readonly retryAfterMs: number | null;

  constructor(kind: SmartRouterErrorKind, message: string, details: { status?: number; errorType?: string; retryAfterMs?: number } = {}) {
    super(message);
    this.name = "SmartRouterError";
    this.kind = kind;
    this.status = details.status ?? null;
    this.errorType = details.errorType ?? null;
    this.retryAfterMs = details.retryAfterMs ?? null;
  }

  /** Our own pacer said "not yet": nothing failed, so it must not spend the message's retries. */
  get isLocalBackpressure(): boolean {
    return this.kind === "rate_limited" && this.status === null;
  }

  /** Whether trying again later can succeed. */
  get retryable(): boolean {
    return this.kind === "rate_limited" || this.kind === "server" || this.kind === "network" || this.kind === "authentication";
  }
}

/** The error kind of an HTTP error status Smart Router answered. */
export function kindForStatus(status: number): SmartRouterErrorKind {
  if (status === 404) return "not_found";
  if (status === 401 || status === 403) return "authentication";
  if (status === 410 || status === 402) return "declined";
  if (status === 429) return "rate_limited";
  if (status >= 500) return "server";
  return "validation";
}
