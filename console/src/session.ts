// Who the console acts as. Kept in sessionStorage only: gone when the tab closes, never in the URL or localStorage.

/** A merchant's own API key, or the admin token acting as one merchant (`X-Merchant-Id`). */
export type Session = { kind: "merchant"; apiKey: string } | { kind: "admin"; token: string; merchantId: string };

const KEY = "sre-console-session";

/** The session saved in this tab, if any. */
export function loadSession(): Session | null {
  const saved = sessionStorage.getItem(KEY);
  if (!saved) return null;
  try {
    const value: unknown = JSON.parse(saved);
    return isSession(value) ? value : null;
  } catch {
    return null;
  }
}

/** Saves the session for this tab. */
export function saveSession(session: Session): void {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

/** Forgets the session (sign-out, or a key the API refused). */
export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}

/** The headers that authenticate a request as the session. */
export function authHeaders(session: Session): Record<string, string> {
  return session.kind === "merchant"
    ? { authorization: `Bearer ${session.apiKey}` }
    : { authorization: `Bearer ${session.token}`, "x-merchant-id": session.merchantId };
}

function isSession(value: unknown): value is Session {
  if (typeof value !== "object" || value === null || !("kind" in value)) return false;
  if (value.kind === "merchant") return "apiKey" in value && typeof value.apiKey === "string";
  return (
    value.kind === "admin" &&
    "token" in value &&
    typeof value.token === "string" &&
    "merchantId" in value &&
    typeof value.merchantId === "string"
  );
}
