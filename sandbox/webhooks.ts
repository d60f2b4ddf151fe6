import { SandboxError } from "./errors.ts";
import { newId } from "./ids.ts";
import type { DeliveryLogEntry, EventObject, ProjectState, WebhookEndpoint } from "./model.ts";
import type { Scheduler, TimerHandle } from "./scheduler.ts";

/** Sends one webhook request and returns the receiver's answer; the default is the global `fetch`. */
export type DeliveryTransport = (request: Request) => Promise<Response>;

/** A delivery handed out in relay mode, for the claimer to send and report on. */
export interface RelayedDelivery {
  /** The attempt id to report the result to. */
  id: string;
  /** Stable across the attempts of one delivery. */
  delivery_id: string;
  project_id: string;
  event_id: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  attempt: number;
}

interface Delivery {
  id: string;
  /** The project as it was when the event fired; a project deleted (or reset and re-created) since gets nothing. */
  project: ProjectState;
  endpointId: string;
  eventId: string;
  eventType: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  attempt: number;
  forged: boolean;
  duplicate: boolean;
}

interface ParkedAttempt {
  id: string;
  delivery: Delivery;
  claimedUntil: TimerHandle | null;
}

export interface WebhookEnvironment {
  scheduler: Scheduler;
  random(): number;
  now(): number;
  transport: DeliveryTransport | "relay";
  project(id: string): ProjectState | undefined;
}

/** Splits `http://user:pass@host/path` into the URL to post to and the `Authorization: Basic …` header it implies. */
export function parseEndpointUrl(raw: string): { target: string; authorization: string | null } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new SandboxError(400, "request.validation.invalid-url", `webhook url ${JSON.stringify(raw)} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new SandboxError(400, "request.validation.invalid-url", "webhook url must be http or https");
  }
  let authorization: string | null = null;
  if (url.username !== "" || url.password !== "") {
    const credential = new TextEncoder().encode(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`);
    authorization = `Basic ${btoa(String.fromCharCode(...credential))}`;
    url.username = "";
    url.password = "";
  }
  return { target: url.toString(), authorization };
}

/** The webhook sender: one delivery per event and endpoint, retries with exponential backoff, chaos on request. */
export function createWebhookSender(env: WebhookEnvironment) {
  const parked = new Map<string, ParkedAttempt>();
  const inFlight = new Map<ProjectState, number>();

  const chance = (rate: number) => rate > 0 && env.random() < rate;
  const timestamp = () => new Date(env.now()).toISOString();

  function log(project: ProjectState, delivery: Delivery, entry: Pick<DeliveryLogEntry, "attempt_id" | "status" | "outcome">): void {
    project.deliveryLog.push({
      delivery_id: delivery.id,
      endpoint_id: delivery.endpointId,
      event_id: delivery.eventId,
      event_type: delivery.eventType,
      attempt: delivery.attempt,
      forged: delivery.forged,
      duplicate: delivery.duplicate,
      at: timestamp(),
      ...entry,
    });
  }

  function newDelivery(
    project: ProjectState,
    endpoint: WebhookEndpoint,
    eventId: string,
    eventType: string,
    kind: "real" | "duplicate" | "forged",
  ): Delivery {
    const headers: Record<string, string> = { "content-type": "application/json", "user-agent": "ProcessOut-Webhooks (sandbox emulator)" };
    if (endpoint.authorization) headers.authorization = endpoint.authorization;
    return {
      id: newId("dlv"),
      project,
      endpointId: endpoint.id,
      eventId,
      eventType,
      url: endpoint.target,
      headers,
      body: JSON.stringify({ event_id: eventId, event_type: eventType }),
      attempt: 0,
      forged: kind === "forged",
      duplicate: kind === "duplicate",
    };
  }

  function schedule(project: ProjectState, delivery: Delivery, delayMs: number): void {
    const extra = project.settings.chaos.max_extra_delay_ms;
    const jitter = extra > 0 ? env.random() * extra : 0;
    env.scheduler.after(project.id, delayMs + jitter, () => attempt(delivery));
  }

  function enqueue(project: ProjectState, delivery: Delivery): void {
    project.counters.deliveries.scheduled++;
    schedule(project, delivery, 0);
  }

  const live = (delivery: Delivery): ProjectState | undefined =>
    env.project(delivery.project.id) === delivery.project ? delivery.project : undefined;

  async function attempt(delivery: Delivery): Promise<void> {
    const project = live(delivery);
    if (!project) return;
    delivery.attempt++;
    if (env.transport === "relay") {
      const id = newId("att");
      parked.set(id, { id, delivery, claimedUntil: null });
      return;
    }
    inFlight.set(project, (inFlight.get(project) ?? 0) + 1);
    let status: number;
    try {
      status = await send(env.transport, delivery, project.settings.webhook.timeout_ms);
    } finally {
      inFlight.set(project, (inFlight.get(project) ?? 1) - 1);
    }
    settle(delivery, null, status);
  }

  async function send(transport: DeliveryTransport, delivery: Delivery, timeoutMs: number): Promise<number> {
    const controller = new AbortController();
    let timer: TimerHandle | null = null;
    const timedOut = new Promise<number>((resolve) => {
      timer = env.scheduler.afterReal(delivery.project.id, timeoutMs, () => {
        controller.abort();
        resolve(0);
      });
    });
    const answered = (async () => {
      const request = new Request(delivery.url, {
        method: "POST",
        headers: delivery.headers,
        body: delivery.body,
        signal: controller.signal,
      });
      const response = await transport(request);
      // Nobody reads the answer's body; release it.
      await response.body?.cancel().catch(() => undefined);
      return response.status;
    })().catch(() => 0);
    const status = await Promise.race([answered, timedOut]);
    env.scheduler.cancel(timer);
    return status;
  }

  /** Records an attempt's outcome and schedules the retry, whichever transport carried it. */
  function settle(delivery: Delivery, attemptId: string | null, status: number): void {
    const project = live(delivery);
    if (!project) return;
    const counters = project.counters.deliveries;
    counters.attempts++;
    if (status >= 200 && status < 300) {
      counters.succeeded++;
      log(project, delivery, { attempt_id: attemptId, status, outcome: "succeeded" });
      return;
    }
    if (status === 0) counters.network_errors++;
    else counters.failed++;
    log(project, delivery, { attempt_id: attemptId, status, outcome: status === 0 ? "network-error" : "failed" });
    // A forger does not retry; a forged delivery gets one attempt.
    if (delivery.forged) return;
    const policy = project.settings.webhook;
    if (delivery.attempt >= policy.max_attempts) {
      counters.gave_up++;
      return;
    }
    counters.retries++;
    schedule(project, delivery, policy.backoff_base_ms * 2 ** (delivery.attempt - 1));
  }

  return {
    /** Sends `event` to every endpoint of its project that wants it, through the chaos the project asks for. */
    dispatch(project: ProjectState, event: EventObject): void {
      const chaos = project.settings.chaos;
      const endpoints = project.endpoints.filter((endpoint) => endpoint.events === null || endpoint.events.includes(event.name));
      for (const endpoint of endpoints) {
        const delivery = newDelivery(project, endpoint, event.id, event.name, "real");
        if (chance(chaos.drop_rate)) {
          project.counters.deliveries.dropped++;
          log(project, delivery, { attempt_id: null, status: null, outcome: "dropped" });
          continue;
        }
        enqueue(project, delivery);
        if (chance(chaos.duplicate_rate)) {
          project.counters.deliveries.duplicated++;
          enqueue(project, newDelivery(project, endpoint, event.id, event.name, "duplicate"));
        }
      }
      if (endpoints.length > 0 && chance(chaos.forge_rate)) {
        const forgedId = newId("ev");
        for (const endpoint of endpoints) {
          project.counters.deliveries.forged++;
          enqueue(project, newDelivery(project, endpoint, forgedId, event.name, "forged"));
        }
      }
    },

    /** Relay mode: hands out due attempts (of one project, or all), each leased for the project's timeout_ms. */
    claim(projectId: string | null, limit: number): RelayedDelivery[] {
      const claimed: RelayedDelivery[] = [];
      for (const entry of parked.values()) {
        if (claimed.length >= limit) break;
        if (entry.claimedUntil !== null || (projectId !== null && entry.delivery.project.id !== projectId)) continue;
        const project = live(entry.delivery);
        if (!project) continue;
        // An attempt claimed but never reported counts as a timeout, as a silent receiver would.
        entry.claimedUntil = env.scheduler.afterReal(project.id, project.settings.webhook.timeout_ms, () => {
          parked.delete(entry.id);
          settle(entry.delivery, entry.id, 0);
        });
        const { delivery } = entry;
        claimed.push({
          id: entry.id,
          delivery_id: delivery.id,
          project_id: delivery.project.id,
          event_id: delivery.eventId,
          url: delivery.url,
          headers: { ...delivery.headers },
          body: delivery.body,
          attempt: delivery.attempt,
        });
      }
      return claimed;
    },

    /** Relay mode: the outcome of a claimed attempt (HTTP status, 0 for a network error). False if not claimed. */
    report(attemptId: string, status: number): boolean {
      const entry = parked.get(attemptId);
      if (!entry || entry.claimedUntil === null) return false;
      env.scheduler.cancel(entry.claimedUntil);
      parked.delete(attemptId);
      settle(entry.delivery, attemptId, status);
      return true;
    },

    /** Work not finished for a project: attempts parked or claimed (relay), requests in flight (fetch). */
    backlog(project: ProjectState): { parked: number; claimed: number; in_flight: number } {
      let waiting = 0;
      let claimed = 0;
      for (const entry of parked.values()) {
        if (entry.delivery.project !== project) continue;
        if (entry.claimedUntil === null) waiting++;
        else claimed++;
      }
      return { parked: waiting, claimed, in_flight: inFlight.get(project) ?? 0 };
    },

    /** Drops everything parked for a project (or for all when null). */
    forget(projectId: string | null): void {
      for (const [id, entry] of parked) {
        if (projectId !== null && entry.delivery.project.id !== projectId) continue;
        env.scheduler.cancel(entry.claimedUntil);
        parked.delete(id);
      }
      for (const project of inFlight.keys()) if (projectId === null || project.id === projectId) inFlight.delete(project);
    },
  };
}

export type WebhookSender = ReturnType<typeof createWebhookSender>;
