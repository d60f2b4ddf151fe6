import type { ContentfulStatusCode } from "hono/utils/http-status";

/** Every error code the service answers with; the closed list merchants can switch on. */
export const ERROR_CODES = {
  bad_request: 400,
  invalid_body: 400,
  invalid_query: 400,
  invalid_cursor: 400,
  unauthorized: 401,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  credentials_refused: 422,
  rate_limited: 429,
  internal_error: 500,
  service_unavailable: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The one error type routes throw; `app.onError` turns it into the JSON envelope. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: ContentfulStatusCode;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.status = ERROR_CODES[code];
    this.headers = headers;
  }
}

/** The error envelope of contract.md. */
export function errorBody(code: ErrorCode, message: string, requestId: string) {
  return { error: { code, message, request_id: requestId } };
}
