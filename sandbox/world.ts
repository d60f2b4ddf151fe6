import { SandboxError } from "./errors.ts";
import type { GcraState } from "./gcra.ts";
import { newId } from "./ids.ts";
import { type EventObject, newCounters, type ProjectState, presentTransaction, type TransactionRecord } from "./model.ts";
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
}

export interface Sink {
  requests: SinkRequest[];
  /** The status the next requests get; `remaining` null means "from now on". */
  answer: { status: number; remaining: number | null } | null;
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
  now(): number;
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
  reset(): void;
  close(): void;
}

/** Builds the emulator's state, its payment engine and its webhook sender. */
export function createWorld(options: WorldOptions): World {
  const projects = new Map<string, ProjectState>();
  const scheduler = createScheduler(options.timeScale, (error) => {
    console.error("sandbox: scheduled task failed:", error instanceof Error ? error.message : error);
  });
  const webhooks = createWebhookSender({
    scheduler,
    random: options.random,
    now: options.now,
    transport: options.transport,
    project: (id) => projects.get(id),
  });

  function fire(project: ProjectState, tx: TransactionRecord, name: string): void {
    const event: EventObject = {
      id: newId("ev"),
      project_id: project.id,
      name,
      sandbox: project.sandbox,
      fired_at: new Date(options.now()).toISOString(),
      data: { name, sandbox: project.sandbox, transaction: presentTransaction(tx, true) },
    };
    project.eventIndex.set(event.id, project.events.length);
    project.events.push(event);
    webhooks.dispatch(project, event);
  }

  const payments = createPayments({ now: options.now, scheduler, fire });

  const world: World = {
    options,
    now: options.now,
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
        createdAt: new Date(options.now()).toISOString(),
        gatewayConfigurationId: newId("gway_conf"),
        settings: mergeSettings(DEFAULT_SETTINGS, settings),
        buckets: {},
        transactions: [],
        transactionIndex: new Map(),
        events: [],
        eventIndex: new Map(),
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

    reset() {
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
