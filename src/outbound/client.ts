import { standardWebhookHeaders } from "./signature";

/** How long a receiver has to answer one notification. */
const TIMEOUT_MS = 10_000;

/**
 * What one signed POST came to. `error` says why an attempt failed, naming the receiver, and never quotes its answer:
 * `http_status` and `redirect` (a 3xx, never followed) carry the status; `timeout` and `network` had no answer.
 */
export type OutboundResult =
  | { kind: "delivered"; status: number }
  | { kind: "failed"; reason: "http_status" | "redirect"; status: number; error: string }
  | { kind: "failed"; reason: "timeout" | "network"; error: string };

/** One Standard Webhooks notification and where it goes. */
export interface SignedWebhook {
  url: string;
  /** The `webhook-id`: the same on every attempt, so the receiver can deduplicate a retried notification. */
  messageId: string;
  /** The JSON body, exactly as signed. */
  payload: string;
  /** Several during a signing-secret rotation's overlap: one `v1,` signature each. */
  secrets: string | readonly string[];
  /** When it is signed, in ms (the `webhook-timestamp` header is in seconds). */
  now: number;
  /** How a failure's `error` names the receiver, e.g. `merchant answered 500`. */
  receiver: string;
  fetcher?: typeof fetch;
}

/** POSTs one signed notification (Standard Webhooks headers), redirects not followed, within TIMEOUT_MS. */
export async function postSignedWebhook({
  url,
  messageId,
  payload,
  secrets,
  now,
  receiver,
  fetcher = fetch,
}: SignedWebhook): Promise<OutboundResult> {
  try {
    const response = await fetcher(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...(await standardWebhookHeaders(secrets, messageId, payload, now)) },
      body: payload,
      // A redirect could lead anywhere, the URL rules notwithstanding: a 3xx is a failed attempt.
      redirect: "manual",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    // Never read: what the receiver answers (or a server it should not be) stays out of every record and log.
    await response.body?.cancel();
    const status = response.status;
    if (response.ok) return { kind: "delivered", status };
    return status >= 300 && status < 400
      ? { kind: "failed", reason: "redirect", status, error: `${receiver} answered ${status} (redirects are not followed)` }
      : { kind: "failed", reason: "http_status", status, error: `${receiver} answered ${status}` };
  } catch (cause) {
    return cause instanceof Error && cause.name === "TimeoutError"
      ? { kind: "failed", reason: "timeout", error: "timed out" }
      : { kind: "failed", reason: "network", error: "network error" };
  }
}
