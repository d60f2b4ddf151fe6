import type { EventObject, Sandbox, TransactionView } from "../../sandbox/index.ts";

export const BASE = "http://sandbox.test";

let counter = 0;
/** A project id unique within the run: tests in a file share one emulator. */
export function uniqueProject(prefix = "test-proj"): string {
  counter += 1;
  return `${prefix}_${Date.now().toString(36)}${counter}`;
}

export interface Envelope {
  success: boolean;
  error_type?: string;
  message?: string;
}

export interface Called<T> {
  status: number;
  headers: Headers;
  body: T & Envelope;
}

async function call<T>(sandbox: Sandbox, request: Request): Promise<Called<T>> {
  const response = await sandbox.fetch(request);
  return { status: response.status, headers: response.headers, body: (await response.json()) as T & Envelope };
}

/** Calls the control API; `body` is sent as JSON. */
export function control<T = Record<string, unknown>>(sandbox: Sandbox, method: string, path: string, body?: unknown): Promise<Called<T>> {
  return call<T>(
    sandbox,
    new Request(`${BASE}/_sandbox${path}`, {
      method,
      headers: { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    }),
  );
}

export function basic(username: string, password: string): string {
  return `Basic ${btoa(`${username}:${password}`)}`;
}

/** Calls Smart Router's API as the project (secret `sk_<project>` unless given). */
export function api<T = Record<string, unknown>>(
  sandbox: Sandbox,
  project: string,
  path: string,
  secret = `sk_${project}`,
): Promise<Called<T>> {
  return call<T>(sandbox, new Request(`${BASE}${path}`, { headers: { authorization: basic(project, secret), "api-version": "1.4.0.0" } }));
}

/** Creates a project with secret `sk_<id>` and the given settings. */
export async function createProject(sandbox: Sandbox, settings: Record<string, unknown> = {}, id = uniqueProject()): Promise<string> {
  const created = await control(sandbox, "POST", "/projects", { project_id: id, secret_key: `sk_${id}`, ...settings });
  if (created.status !== 201) throw new Error(`createProject: ${created.status} ${JSON.stringify(created.body)}`);
  return id;
}

export interface ActionBody {
  outcome: "succeeded" | "declined" | "pending";
  transaction: TransactionView;
}

/** Creates a payment through the control API and returns the transaction. */
export async function pay(sandbox: Sandbox, project: string, input: Record<string, unknown>): Promise<TransactionView> {
  const created = await control<{ transaction: TransactionView }>(sandbox, "POST", `/projects/${project}/transactions`, {
    amount: "10",
    currency: "EUR",
    ...input,
  });
  if (created.status !== 201) throw new Error(`pay: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body.transaction;
}

/** Runs an action (capture, void, refund, complete, fail, advance) on a transaction. */
export async function act(
  sandbox: Sandbox,
  project: string,
  transactionId: string,
  action: string,
  body?: unknown,
): Promise<Called<ActionBody>> {
  return control<ActionBody>(sandbox, "POST", `/projects/${project}/transactions/${transactionId}/${action}`, body);
}

export interface Truth {
  transactions: TransactionView[];
  events: { id: string; name: string; transaction_id: string; status: string; fired_at: string }[];
}

export async function truth(sandbox: Sandbox, project: string): Promise<Truth> {
  return (await control<Truth>(sandbox, "GET", `/projects/${project}/truth`)).body;
}

/** The event names fired for one transaction, in order, with the status each snapshot carries. */
export async function timeline(sandbox: Sandbox, project: string, transactionId: string): Promise<string[]> {
  const { events } = await truth(sandbox, project);
  return events.filter((event) => event.transaction_id === transactionId).map((event) => `${event.name}:${event.status}`);
}

/** The operation history as `type/attempt|ok|failed amount`. */
export function operations(tx: TransactionView): string[] {
  return (tx.operations ?? []).map(
    (operation) => `${operation.type}/${operation.is_attempt ? "attempt" : operation.has_failed ? "failed" : "ok"} ${operation.amount}`,
  );
}

/** Polls until `check` returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = 3000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export type { EventObject, TransactionView };
