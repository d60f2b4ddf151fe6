// The Smart Router emulator (sandbox/), in this Node process, and the few control calls the bench needs.
import "./ts-resolve.mjs";

const { createSandbox } = await import("../../../sandbox/index.ts");

/** Rates so high neither the emulator nor our pacer ever waits: for measuring work, not pacing. */
export const UNLIMITED = 1_000_000;

export function startEmulator() {
  // No webhook endpoints are registered, so the emulator never delivers anything by itself.
  const sandbox = createSandbox({ transport: async () => new Response(null, { status: 204 }) });
  const control = async (path, { method, body } = {}) => {
    const response = await sandbox.fetch(
      new Request(`http://smart-router.sandbox/_sandbox${path}`, {
        method: method ?? (body === undefined ? "GET" : "POST"),
        headers: { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
    const text = await response.text();
    if (!response.ok) throw new Error(`emulator ${path}: ${response.status} ${text}`);
    return JSON.parse(text);
  };
  const seen = new Map();
  return {
    sandbox,
    fetch: (request) => sandbox.fetch(request),
    createProject: (projectId, secretKey, { unlimited = true } = {}) =>
      control("/projects", {
        body: {
          project_id: projectId,
          secret_key: secretKey,
          ...(unlimited ? { rates: { primary: UNLIMITED, events: UNLIMITED, sandbox: UNLIMITED, burst: 1000 } } : {}),
        },
      }),
    /** A card payment that is authorized then captured: 3 events (requested, authorized, captured). */
    pay: (projectId, card = "4242424242424242") =>
      control(`/projects/${projectId}/transactions`, { body: { amount: "19.99", currency: "EUR", card } }),
    /** Events fired since the last call for this project, oldest first. */
    async newEvents(projectId) {
      const { events } = await control(`/projects/${projectId}/truth`);
      const from = seen.get(projectId) ?? 0;
      seen.set(projectId, events.length);
      return events.slice(from);
    },
    /** API calls the project received, by bucket. */
    async apiCalls(projectId) {
      const { counters } = await control(`/projects/${projectId}/counters`);
      const api = counters.api;
      const total = (field) => api.primary[field] + api.events[field] + api.sandbox[field];
      return { total: total("requests"), events: api.events.requests, primary: api.primary.requests, rateLimited: total("rate_limited") };
    },
    close: () => sandbox.close(),
  };
}
