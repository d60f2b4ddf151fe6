import { SandboxError } from "./errors.ts";
import type { GcraState } from "./gcra.ts";
import { newId } from "./ids.ts";
import {
  type EventObject,
  newCounters,
  type ProjectState,
  presentTransaction,
  type TransactionRecord,
  type TransactionView,
} from "./model.ts";
import { createPayments, type Payments } from "./payments.ts";
import { createScheduler, type Scheduler } from "./scheduler.ts";
import { DEFAULT_SETTINGS, mergeSettings, type SettingsPatch } from "./settings.ts";
import { createWebhookSender, type DeliveryTransport, type WebhookSender } from "./webhooks.ts";

/** A request recorded by a fulfilment sink. */
export interface SinkRequest {
  id: string;
  received_at: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  /** The body parsed as JSON, or null when it is not JSON. */
  json: unknown;
  /** The status the sink answered. */
  answered: number;
}

export interface Sink {
  requests: SinkRequest[];
  /**
   * The status the next requests get; `remaining` null means "from now on". With `firstAttempts`, only that share of
   * first attempts (a `webhook-id` the sink has not seen) gets it, and every other request 200.
   */
  answer: { status: number; remaining: number | null; firstAttempts: number | null } | null;
  /** Every `webhook-id` received so far: what makes a request a first attempt. */
  seen: Set<string>;
}

export interface WorldOptions {
  timeScale: number;
  transport: DeliveryTransport | "relay";
  now: () => number;
  random: () => number;
}

/** Everything the emulator knows, shared by the API and the control API. */
export interface World {
  options: WorldOptions;
  /** The emulator's clock: `options.now()` plus whatever `/_sandbox/clock` advanced it by. */
  now(): number;
  /** Moves `now()` forward by `ms` (timers keep running on real time: only what reads the clock sees it). */
  advanceClock(ms: number): number;
  random(): number;
  scheduler: Scheduler;
  payments: Payments;
  webhooks: WebhookSender;
  projects: Map<string, ProjectState>;
  sinks: Map<string, Sink>;
  /** The bucket that answers requests with unknown credentials (they name no project to charge). */
  anonymousBucket: { state: GcraState | undefined };
  createProject(input: { projectId: string; secretKey: string; settings: SettingsPatch }): ProjectState;
  deleteProject(projectId: string): void;
  project(projectId: string): ProjectState;
  transaction(project: ProjectState, transactionId: string): TransactionRecord;
  /**
   * Stores an event written by a test, not by the payment engine: any transaction snapshot Smart Router could send
   * (status-only changes, odd histories, any fired_at), readable through the API like any other; `send` also
   * dispatches its webhooks. What the docs leave open can be produced here even where no payment flow leads to it.
   */
  scriptEvent(
    project: ProjectState,
    input: { name: string; transaction: TransactionView; firedAt?: string; readDelayMs?: number; send: boolean },
  ): EventObject;
  /** How many of the project's events can be read now: the read lag hides the newest ones, always a suffix. */
  readableEvents(project: ProjectState): number;
  reset(): void;
  close(): void;
}

/** Builds the emulator's state, its payment engine and its webhook sender. */
export function createWorld(options: WorldOptions): World {
  const projects = new Map<string, ProjectState>();
  let clockOffset = 0;
  const now = () => options.now() + clockOffset;
  const scheduler = createScheduler(options.timeScale, (error) => {
    console.error("sandbox: scheduled task failed:", error instanceof Error ? error.message : error);
  });
  const webhooks = createWebhookSender({
    scheduler,
    random: options.random,
    now,
    transport: options.transport,
    project: (id) => projects.get(id),
  });

  function fire(project: ProjectState, tx: TransactionRecord, name: string): void {
    const clock = now();
    // Our choice (README): fired_at strictly increases per project, 1 ms apart when the clock has not moved, so
    // ordering by fired_at is never a tie. The read lag counts from the clock, never going back.
    const firedAt = Math.max(clock, project.lastFiredAt + 1);
    project.lastFiredAt = firedAt;
    const event: EventObject = {
      id: newId("ev"),
      project_id: project.id,
      name,
      sandbox: project.sandbox,
      fired_at: new Date(firedAt).toISOString(),
      data: { name, sandbox: project.sandbox, transaction: presentTransaction(tx, true) },
    };
    store(project, event, clock);
    webhooks.dispatch(project, event);
  }

  const payments = createPayments({ now, scheduler, fire });

  function store(project: ProjectState, event: EventObject, clock: number): void {
    project.eventIndex.set(event.id, project.events.length);
    project.events.push(event);
    project.eventClock.push(Math.max(clock, project.eventClock.at(-1) ?? clock));
  }

  const world: World = {
    options,
    now,
    advanceClock(ms) {
      clockOffset += ms;
      return now();
    },
    random: options.random,
    scheduler,
    payments,
    webhooks,
    projects,
    sinks: new Map(),
    anonymousBucket: { state: undefined },

    createProject({ projectId, secretKey, settings }) {
      if (projects.has(projectId)) throw new SandboxError(409, "resource.project.already-exists", `project ${projectId} already exists`);
      const project: ProjectState = {
        id: projectId,
        secretKey,
        // smart-router.md §4/§7: sandbox projects are the `test-` ones.
        sandbox: projectId.startsWith("test-"),
        createdAt: new Date(now()).toISOString(),
        gatewayConfigurationId: newId("gway_conf"),
        settings: mergeSettings(DEFAULT_SETTINGS, settings),
        buckets: {},
        transactions: [],
        transactionIndex: new Map(),
        events: [],
        eventIndex: new Map(),
        eventClock: [],
        eventReadDelays: new Map(),
        lastFiredAt: Number.NEGATIVE_INFINITY,
        endpoints: [],
        deliveryLog: [],
        counters: newCounters(),
      };
      projects.set(projectId, project);
      return project;
    },

    deleteProject(projectId) {
      world.project(projectId);
      scheduler.cancelOwner(projectId);
      webhooks.forget(projectId);
      projects.delete(projectId);
    },

    project(projectId) {
      const project = projects.get(projectId);
      if (!project) throw new SandboxError(404, "resource.project.not-found", `project ${projectId} not found`);
      return project;
    },

    transaction(project, transactionId) {
      const index = project.transactionIndex.get(transactionId);
      const tx = index === undefined ? undefined : project.transactions[index];
      if (!tx) throw new SandboxError(404, "resource.transaction.not-found", `transaction ${transactionId} not found`);
      return tx;
    },

    scriptEvent(project, input) {
      const clock = now();
      const event: EventObject = {
        id: newId("ev"),
        project_id: project.id,
        name: input.name,
        sandbox: project.sandbox,
        fired_at: input.firedAt ?? new Date(clock).toISOString(),
        data: { name: input.name, sandbox: project.sandbox, transaction: input.transaction },
      };
      store(project, event, clock);
      if (input.readDelayMs) project.eventReadDelays.set(event.id, input.readDelayMs);
      if (input.send) webhooks.dispatch(project, event);
      return event;
    },

    readableEvents(project) {
      const lag = project.settings.readings.event_read_lag_ms * options.timeScale;
      let count = project.events.length;
      if (lag <= 0) return count;
      // eventClock never decreases, so the events still hidden are the newest: walk back from the end.
      const cutoff = now() - lag;
      while (count > 0 && (project.eventClock[count - 1] ?? 0) > cutoff) count--;
      return count;
    },

    reset() {
      // A reset is a fresh emulator: the clock goes back to the injected one.
      clockOffset = 0;
      scheduler.cancelAll();
      webhooks.forget(null);
      projects.clear();
      world.sinks.clear();
      world.anonymousBucket.state = undefined;
    },

    close() {
      scheduler.close();
      webhooks.forget(null);
    },
  };
  return world;
}
