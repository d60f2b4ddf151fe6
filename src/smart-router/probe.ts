import type { AppConfig, AppEnv } from "../env";
import { limiterFor } from "../rate-limiter/client";
import { SmartRouterClient, type SmartRouterCredentials } from "./client";
import { SmartRouterError } from "./errors";

/** What one call with a merchant's credentials showed: refused, accepted (with the newest event), or nothing certain. */
export type CredentialCheck =
  | { kind: "accepted"; newestEvent: { id: string; firedAt: string } | null }
  | { kind: "refused"; detail: string }
  | { kind: "unknown"; detail: string };

/**
 * One `GET /events?limit=1` with the credentials, in the interactive lane: Smart Router refusing them (401/403) is
 * the answer the admin API turns into a 422; an outage or a timeout says nothing, so registration goes on. The newest
 * event becomes where the event-log backstop starts.
 */
export async function probeCredentials(env: AppEnv, config: AppConfig, credentials: SmartRouterCredentials): Promise<CredentialCheck> {
  const client = new SmartRouterClient({
    baseUrl: config.SMART_ROUTER_API_URL,
    credentials,
    limiter: limiterFor(env, credentials.projectId, null),
    lane: "interactive",
  });
  try {
    const { events } = await client.listEvents({ limit: 1, order: "desc" });
    const newest = events[0];
    return { kind: "accepted", newestEvent: newest ? { id: newest.id, firedAt: newest.fired_at } : null };
  } catch (error) {
    if (error instanceof SmartRouterError && error.kind === "authentication") {
      return { kind: "refused", detail: `Smart Router answered ${error.status ?? 401} ${error.errorType ?? "authentication failed"}` };
    }
    return { kind: "unknown", detail: error instanceof Error ? error.message : String(error) };
  }
}
