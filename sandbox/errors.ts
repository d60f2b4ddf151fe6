import type { ContentfulStatusCode } from "hono/utils/http-status";

/** The one error the emulator throws; `app.onError` turns it into Smart Router's error envelope. */
export class SandboxError extends Error {
  readonly status: ContentfulStatusCode;
  /** Smart Router's `error_type`, e.g. `resource.event.not-found`. */
  readonly errorType: string;
  readonly headers: Record<string, string>;

  constructor(status: ContentfulStatusCode, errorType: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "SandboxError";
    this.status = status;
    this.errorType = errorType;
    this.headers = headers;
  }
}

/** Smart Router's error body (smart-router.md §4). */
export function errorEnvelope(errorType: string, message: string) {
  return { success: false as const, error_type: errorType, message };
}
