import { type Context, Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";
import { SandboxError } from "./errors.ts";
import { newId } from "./ids.ts";
import { type ProjectState, presentTransaction, type TransactionRecord, type TransactionView, type WebhookEndpoint } from "./model.ts";
import { AmountError, isCurrency, parseAmount } from "./money.ts";
import type { ActionOutcome, PaymentMethod } from "./payments.ts";
import { READINGS } from "./readings.ts";
import { DEFAULT_SETTINGS, mergeSettings, settingsPatchSchema } from "./settings.ts";
import { parseEndpointUrl } from "./webhooks.ts";
import type { Sink, World } from "./world.ts";

const projectIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, "letters, digits, _ and -, at most 100");
const eventNameSchema = z.string().regex(/^[a-z0-9_.-]{1,128}$/, "a dotted event name");

const createProjectSchema = settingsPatchSchema.extend({
  project_id: projectIdSchema,
  secret_key: z.string().min(1).max(200),
});

const endpointSchema = z.strictObject({
  url: z.string().min(1).max(2000),
  /** Whitelist of event names; omitted or null: every event. */
  events: z.array(eventNameSchema).min(1).nullable().optional(),
});

const paymentSchema = z
  .strictObject({
    amount: z.string().min(1).max(40),
    currency: z.string().refine(isCurrency, "a three-letter ISO 4217 code in capitals"),
    name: z.string().max(200).optional(),
    metadata: z.record(z.string().max(100), z.string().max(1000)).optional(),
    capture: z.enum(["auto", "manual"]).optional(),
    card: z.string().max(40).optional(),
    apm: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "an APM payment_type such as sandbox-apm")
      .refine((name) => name !== "card", "card is not an APM")
      .optional(),
    flow: z.enum(["one-step", "two-step"]).optional(),
    outcome: z.enum(["success", "failure"]).optional(),
    /** Holds the card's authorization in fraud review (`in-review`), to be approved or blocked after `dispute_ms`. */
    review: z.enum(["approve", "block"]).optional(),
  })
  .refine((input) => (input.card === undefined) !== (input.apm === undefined), "give exactly one of card and apm")
  .refine((input) => input.card === undefined || (input.flow === undefined && input.outcome === undefined), "flow and outcome are for APMs")
  .refine((input) => input.apm === undefined || input.review === undefined, "review is for cards");

const transactionEditSchema = z
  .strictObject({
    metadata: z.record(z.string().max(100), z.string().max(1000)).optional(),
    error_code: z.string().min(1).max(100).nullable().optional(),
    error_message: z.string().min(1).max(500).nullable().optional(),
  })
  .refine((edit) => Object.keys(edit).length > 0, "give at least one of metadata, error_code, error_message");

/** A scripted event: its transaction is taken as given (an object with an id), so a test can send any snapshot. */
const scriptedEventSchema = z.strictObject({
  name: eventNameSchema,
  transaction: z.looseObject({ id: z.string().regex(/^tr_/) }),
  fired_at: z.iso.datetime({ offset: true }).optional(),
  /** `GET /events/{id}` of this event answers this many real ms late. */
  read_delay_ms: z.number().int().min(0).max(60_000).optional(),
  /** Also deliver it to the project's webhook endpoints (default false: the test delivers it itself). */
  send: z.boolean().optional(),
});

// The clock only moves forward: timestamps already handed out must stay in the past.
const clockSchema = z.strictObject({
  advance_ms: z
    .number()
    .int()
    .min(0)
    .max(365 * 24 * 3600 * 1000),
});

const amountSchema = z.strictObject({ amount: z.string().min(1).max(40).optional() });
const failSchema = z.strictObject({
  error_code: z.string().min(1).max(100).optional(),
  error_message: z.string().min(1).max(500).optional(),
});
const resultSchema = z.strictObject({ status: z.number().int().min(0).max(599) });
const sinkAnswerSchema = z
  .strictObject({
    status: z.number().int().min(200).max(599),
    times: z.number().int().min(1).optional(),
    /** Answer `status` to this share of first attempts only (a `webhook-id` not seen before), 200 to everything else. */
    first_attempts: z.number().min(0).max(1).optional(),
  })
  .refine((answer) => answer.times === undefined || answer.first_attempts === undefined, "give times or first_attempts, not both");
const sinkNameSchema = z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/);

const newSink = (): Sink => ({ requests: [], answer: null, seen: new Set() });

/** FNV-1a of `text` as a share in [0, 1): which first attempts fail is the same on every run (no random draw). */
function shareOf(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash / 2 ** 32;
}

/** The status a sink answers one request with (`webhookId`: its `webhook-id` header), spending one of `times`. */
function sinkAnswer(sink: Sink, webhookId: string | null): number {
  const firstAttempt = webhookId !== null && !sink.seen.has(webhookId);
  if (webhookId !== null) sink.seen.add(webhookId);
  const answer = sink.answer;
  if (!answer) return 200;
  if (answer.firstAttempts !== null) {
    return firstAttempt && webhookId !== null && shareOf(webhookId) < answer.firstAttempts ? answer.status : 200;
  }
  if (answer.remaining !== null && --answer.remaining <= 0) sink.answer = null;
  return answer.status;
}

/** Reads a JSON body (an empty body counts as `{}`) and checks it; 400 with every problem named. */
async function readBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.output<T>> {
  const text = await c.req.text();
  let raw: unknown = {};
  if (text.trim() !== "") {
    try {
      raw = JSON.parse(text);
    } catch {
      throw new SandboxError(400, "request.bad-format", "the body is not valid JSON");
    }
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".") || "body"}: ${issue.message}`).join("; ");
    throw new SandboxError(400, "request.validation.error", problems);
  }
  return parsed.data;
}

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new SandboxError(400, "request.validation.error", `invalid ${what}`);
  return parsed.data;
}

function minorUnits(amount: string | undefined, currency: string): number | undefined {
  if (amount === undefined) return undefined;
  try {
    return parseAmount(amount, currency);
  } catch (error) {
    if (error instanceof AmountError) throw new SandboxError(400, error.errorType, error.message);
    throw error;
  }
}

function presentProject(world: World, project: ProjectState) {
  return {
    project_id: project.id,
    sandbox: project.sandbox,
    created_at: project.createdAt,
    settings: project.settings,
    webhook_endpoints: project.endpoints.map(presentEndpoint),
    transactions: project.transactions.length,
    events: project.events.length,
    transport: typeof world.options.transport === "function" ? "fetch" : "relay",
  };
}

function presentEndpoint(endpoint: WebhookEndpoint) {
  return { id: endpoint.id, url: endpoint.url, events: endpoint.events, created_at: endpoint.created_at };
}

// The control API shows amounts as the project's API does, so a test compares like with like.
function present(project: ProjectState, tx: TransactionRecord) {
  return presentTransaction(tx, true, project.settings.readings.amount_format);
}

function actionResult(project: ProjectState, outcome: ActionOutcome, tx: TransactionRecord) {
  return { success: true, outcome, transaction: present(project, tx) };
}

/** The control API under `/_sandbox/`: no auth, JSON in and out, the error envelope on bad input. */
export function controlRoutes(world: World) {
  const timestamp = () => new Date(world.now()).toISOString();
  const projectOf = (c: Context) => world.project(c.req.param("project") ?? "");
  const transactionOf = (c: Context) => {
    const project = projectOf(c);
    return { project, tx: world.transaction(project, c.req.param("transaction") ?? "") };
  };

  return (
    new Hono()
      .get("/health", (c) => c.json({ success: true, projects: world.projects.size, time_scale: world.options.timeScale }))
      .post("/reset", (c) => {
        world.reset();
        return c.json({ success: true });
      })
      .get("/clock", (c) => c.json({ success: true, now: timestamp() }))
      .post("/clock", async (c) => {
        const { advance_ms } = await readBody(c, clockSchema);
        return c.json({ success: true, now: new Date(world.advanceClock(advance_ms)).toISOString() });
      })
      .get("/readings", (c) => c.json({ success: true, readings: READINGS, defaults: DEFAULT_SETTINGS.readings }))

      // Projects and their settings.
      .post("/projects", async (c) => {
        const { project_id, secret_key, ...settings } = await readBody(c, createProjectSchema);
        const project = world.createProject({ projectId: project_id, secretKey: secret_key, settings });
        return c.json({ success: true, project: presentProject(world, project) }, 201);
      })
      .get("/projects/:project", (c) => c.json({ success: true, project: presentProject(world, projectOf(c)) }))
      .patch("/projects/:project", async (c) => {
        const project = projectOf(c);
        const { secret_key, ...patch } = await readBody(
          c,
          settingsPatchSchema.extend({ secret_key: z.string().min(1).max(200).optional() }),
        );
        // A new secret key: the project's key was rotated at Smart Router, and the old one answers 401 from now on.
        if (secret_key !== undefined) project.secretKey = secret_key;
        project.settings = mergeSettings(project.settings, patch);
        return c.json({ success: true, project: presentProject(world, project) });
      })
      .delete("/projects/:project", (c) => {
        world.deleteProject(c.req.param("project"));
        return c.json({ success: true });
      })

      // Webhook endpoints.
      .post("/projects/:project/webhooks", async (c) => {
        const project = projectOf(c);
        const input = await readBody(c, endpointSchema);
        const endpoint: WebhookEndpoint = {
          id: newId("wh"),
          url: input.url,
          ...parseEndpointUrl(input.url),
          events: input.events ?? null,
          created_at: timestamp(),
        };
        project.endpoints.push(endpoint);
        return c.json({ success: true, endpoint: presentEndpoint(endpoint) }, 201);
      })
      .get("/projects/:project/webhooks", (c) => c.json({ success: true, endpoints: projectOf(c).endpoints.map(presentEndpoint) }))
      .delete("/projects/:project/webhooks/:endpoint", (c) => {
        const project = projectOf(c);
        const before = project.endpoints.length;
        project.endpoints = project.endpoints.filter((endpoint) => endpoint.id !== c.req.param("endpoint"));
        if (project.endpoints.length === before)
          throw new SandboxError(404, "resource.webhook-endpoint.not-found", "webhook endpoint not found");
        return c.json({ success: true });
      })

      .post("/projects/:project/events", async (c) => {
        const project = projectOf(c);
        const input = await readBody(c, scriptedEventSchema);
        const event = world.scriptEvent(project, {
          name: input.name,
          // Taken as given: a scripted snapshot is whatever the test says Smart Router could send.
          transaction: input.transaction as unknown as TransactionView,
          firedAt: input.fired_at,
          readDelayMs: input.read_delay_ms,
          send: input.send ?? false,
        });
        return c.json({ success: true, event }, 201);
      })

      // Payments.
      .post("/projects/:project/transactions", async (c) => {
        const project = projectOf(c);
        const input = await readBody(c, paymentSchema);
        const method: PaymentMethod =
          input.apm !== undefined
            ? { kind: "apm", name: input.apm, flow: input.flow ?? "one-step", outcome: input.outcome ?? "success" }
            : { kind: "card", number: input.card ?? "", review: input.review ?? null };
        const tx = world.payments.create(project, {
          amount: minorUnits(input.amount, input.currency) ?? 0,
          currency: input.currency,
          name: input.name ?? "Sandbox payment",
          metadata: input.metadata ?? {},
          capture: input.capture ?? "auto",
          method,
        });
        return c.json({ success: true, transaction: present(project, tx) }, 201);
      })
      .get("/projects/:project/transactions/:transaction", (c) => {
        const { project, tx } = transactionOf(c);
        return c.json({ success: true, transaction: present(project, tx) });
      })
      .patch("/projects/:project/transactions/:transaction", async (c) => {
        const { project, tx } = transactionOf(c);
        world.payments.update(project, tx, await readBody(c, transactionEditSchema));
        return c.json({ success: true, transaction: present(project, tx) });
      })
      .post("/projects/:project/transactions/:transaction/capture", async (c) => {
        const { project, tx } = transactionOf(c);
        const { amount } = await readBody(c, amountSchema);
        return c.json(actionResult(project, world.payments.capture(project, tx, minorUnits(amount, tx.currency)), tx));
      })
      .post("/projects/:project/transactions/:transaction/void", (c) => {
        const { project, tx } = transactionOf(c);
        return c.json(actionResult(project, world.payments.void(project, tx), tx));
      })
      .post("/projects/:project/transactions/:transaction/refund", async (c) => {
        const { project, tx } = transactionOf(c);
        const { amount } = await readBody(c, amountSchema);
        return c.json(actionResult(project, world.payments.refund(project, tx, minorUnits(amount, tx.currency)), tx));
      })
      .post("/projects/:project/transactions/:transaction/complete", (c) => {
        const { project, tx } = transactionOf(c);
        return c.json(actionResult(project, world.payments.complete(project, tx, "success"), tx));
      })
      .post("/projects/:project/transactions/:transaction/fail", async (c) => {
        const { project, tx } = transactionOf(c);
        const input = await readBody(c, failSchema);
        const failure =
          input.error_code || input.error_message
            ? { code: input.error_code ?? "payment.declined", message: input.error_message ?? "The payment was declined." }
            : undefined;
        return c.json(actionResult(project, world.payments.complete(project, tx, "failure", failure), tx));
      })
      .post("/projects/:project/transactions/:transaction/advance", (c) => {
        const { project, tx } = transactionOf(c);
        return c.json(actionResult(project, world.payments.advance(project, tx), tx));
      })

      // Reading what happened.
      .get("/projects/:project/truth", (c) => {
        const project = projectOf(c);
        return c.json({
          success: true,
          project_id: project.id,
          transactions: project.transactions.map((tx) => present(project, tx)),
          events: project.events.map((event) => ({
            id: event.id,
            name: event.name,
            transaction_id: event.data.transaction.id,
            status: event.data.transaction.status,
            fired_at: event.fired_at,
          })),
        });
      })
      .get("/projects/:project/counters", (c) => {
        const project = projectOf(c);
        return c.json({
          success: true,
          counters: project.counters,
          backlog: { ...world.webhooks.backlog(project), timers: world.scheduler.pending(project.id) },
        });
      })
      .get("/projects/:project/deliveries", (c) => c.json({ success: true, deliveries: projectOf(c).deliveryLog }))

      // Relay mode: somebody else carries the deliveries and reports back.
      .post("/deliveries/claim", (c) => {
        if (world.options.transport !== "relay") {
          throw new SandboxError(409, "sandbox.not-supported", "relay mode is off: this emulator sends its deliveries itself");
        }
        const projectId = c.req.query("project") ?? null;
        if (projectId !== null) parse(projectIdSchema, projectId, "project");
        const limit = parse(z.coerce.number().int().min(1).max(1000), c.req.query("limit") ?? "100", "limit");
        return c.json({ success: true, deliveries: world.webhooks.claim(projectId, limit) });
      })
      .post("/deliveries/:attempt/result", async (c) => {
        const { status } = await readBody(c, resultSchema);
        if (!world.webhooks.report(c.req.param("attempt"), status)) {
          throw new SandboxError(
            404,
            "resource.delivery.not-found",
            "no claimed delivery with this id (never claimed, already reported or expired)",
          );
        }
        return c.json({ success: true });
      })

      // Fulfilment sinks: record whatever the service under test posts.
      .post("/sink/:name", async (c) => {
        const name = parse(sinkNameSchema, c.req.param("name"), "sink name");
        const sink = world.sinks.get(name) ?? newSink();
        world.sinks.set(name, sink);
        const body = await c.req.text();
        let json: unknown = null;
        try {
          json = JSON.parse(body);
        } catch {
          json = null;
        }
        const headers = Object.fromEntries(c.req.raw.headers);
        const answered = sinkAnswer(sink, headers["webhook-id"] ?? null);
        sink.requests.push({
          id: newId("sink"),
          received_at: timestamp(),
          method: c.req.method,
          url: c.req.url,
          headers,
          body,
          json,
          answered,
        });
        return c.json({ success: answered < 400, received: true }, answered as ContentfulStatusCode);
      })
      .get("/sink/:name", (c) => c.json({ success: true, requests: world.sinks.get(c.req.param("name"))?.requests ?? [] }))
      .put("/sink/:name", async (c) => {
        const name = parse(sinkNameSchema, c.req.param("name"), "sink name");
        const { status, times, first_attempts } = await readBody(c, sinkAnswerSchema);
        const sink = world.sinks.get(name) ?? newSink();
        sink.answer = { status, remaining: times ?? null, firstAttempts: first_attempts ?? null };
        world.sinks.set(name, sink);
        return c.json({ success: true });
      })
      .delete("/sink/:name", (c) => {
        world.sinks.delete(c.req.param("name"));
        return c.json({ success: true });
      })
      .all("*", (c) => {
        throw new SandboxError(404, "request.route-not-found", `no control route for ${c.req.method} ${c.req.path}`);
      })
  );
}
