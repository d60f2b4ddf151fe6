// The one way the console talks to the service: same-origin requests to the documented API, each answer turned into a
// result the panels can show. A 401 and a server failure also go to the shell (sign-in screen, request-id banner).
import type { ErrorEnvelope } from "./api-shapes";

/** What went wrong with one request; `status` 0 means the network failed before any answer. */
export interface ApiFailure {
  status: number;
  code: string;
  message: string;
  requestId: string | null;
  method: string;
  path: string;
}

export type ApiResult<T> = { ok: true; data: T } | { ok: false; failure: ApiFailure };

type Method = "GET" | "DELETE" | "POST" | "PATCH";

/** A client bound to a set of credentials; `onFailure` sees every failed request first. */
export class ApiClient {
  constructor(
    private readonly headers: Record<string, string>,
    private readonly onFailure: (failure: ApiFailure) => void = () => {},
  ) {}

  /** GET a JSON document. */
  get<T>(path: string): Promise<ApiResult<T>> {
    return this.send<T>("GET", path);
  }

  /** DELETE a resource (e.g. cancel a batch) and read the JSON answer. */
  delete<T>(path: string): Promise<ApiResult<T>> {
    return this.send<T>("DELETE", path);
  }

  /** POST a JSON body (e.g. start an endpoint's replay) and read the JSON answer. */
  post<T>(path: string, body: unknown): Promise<ApiResult<T>> {
    return this.send<T>("POST", path, body);
  }

  /** PATCH a resource with a JSON body (e.g. pause an endpoint) and read the JSON answer. */
  patch<T>(path: string, body: unknown): Promise<ApiResult<T>> {
    return this.send<T>("PATCH", path, body);
  }

  private async send<T>(method: Method, path: string, body?: unknown): Promise<ApiResult<T>> {
    let response: Response;
    const json = body === undefined ? {} : { body: JSON.stringify(body), contentType: { "content-type": "application/json" } };
    try {
      response = await fetch(path, {
        method,
        headers: { accept: "application/json", ...json.contentType, ...this.headers },
        body: json.body,
        credentials: "omit",
      });
    } catch (error) {
      return this.fail({ status: 0, code: "network_error", message: errorText(error), requestId: null, method, path });
    }
    const answer: unknown = await response.json().catch(() => null);
    if (response.ok) return { ok: true, data: answer as T };
    const envelope = isErrorEnvelope(answer) ? answer.error : null;
    return this.fail({
      status: response.status,
      code: envelope?.code ?? `http_${response.status}`,
      message: envelope?.message ?? response.statusText,
      requestId: envelope?.request_id ?? null,
      method,
      path,
    });
  }

  private fail<T>(failure: ApiFailure): ApiResult<T> {
    this.onFailure(failure);
    return { ok: false, failure };
  }
}

/** A query string from the given parameters, leaving out empty ones. */
export function query(params: Record<string, string | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** One line describing a failure, for a panel or the banner. */
export function describeFailure(failure: ApiFailure): string {
  const what = `${failure.method} ${failure.path.split("?")[0]}`;
  if (failure.status === 0) return `${what}: the network failed (${failure.message})`;
  return `${what} answered ${failure.status} ${failure.code}: ${failure.message}`;
}

function isErrorEnvelope(body: unknown): body is ErrorEnvelope {
  if (typeof body !== "object" || body === null || !("error" in body)) return false;
  const error = body.error;
  return typeof error === "object" && error !== null && "code" in error && "message" in error;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
