import { z } from "zod";
import type {
  AdminAuditRow,
  DeadLetterRow,
  DeliveryRow,
  EventRow,
  FetchBackRow,
  FulfillmentAttemptRow,
  OperationRow,
  StatusChangeRow,
} from "../db/rows";
import { EVENT_OUTCOMES, FETCH_BACK_OUTCOMES, FULFILLMENT_ATTEMPT_ERRORS, FULFILLMENT_ATTEMPT_OUTCOMES } from "../db/schema";
import { FETCH_BACK_VIAS } from "../smart-router/fetch-back";

/** What the archive needs of an R2 bucket (the `ARCHIVE` binding); tests hand in one that fails where they choose. */
export type ArchiveBucket = Pick<R2Bucket, "get" | "head" | "put">;

/** A timeline row of a payment, as its history's object holds it (deliveries and fetch-backs name their event's transaction). */
export type TimelineRecord =
  | ({ record: "delivery"; transactionId: string } & DeliveryRow)
  | ({ record: "fetch_back"; transactionId: string } & FetchBackRow)
  | ({ record: "status_change" } & StatusChangeRow)
  | ({ record: "fulfillment_attempt" } & FulfillmentAttemptRow);

/** A row archived page by page (retention/pages.ts): a dead letter (on its shard) or an admin audit entry (on `DB`). */
export type PageRecord = ({ record: "dead_letter" } & DeadLetterRow) | ({ record: "audit" } & AdminAuditRow);

/** One line of a history's archive object, a row exactly as drizzle reads it from D1: inbox rows, operations, timeline rows. */
export type ArchiveRecord = ({ record: "event" } & EventRow) | ({ record: "operation" } & OperationRow) | TimelineRecord;

const eventRecord = z.object({
  record: z.literal("event"),
  merchantId: z.string(),
  id: z.string(),
  name: z.string().nullable(),
  transactionId: z.string().nullable(),
  firedAt: z.string().nullable(),
  outcome: z.enum(EVENT_OUTCOMES),
  deliveries: z.int(),
  firstReceivedAt: z.string(),
  processedAt: z.string().nullable(),
  detail: z.string().nullable(),
  // The timeline fold (0024): objects written before it have none of these; null then, as in a row of that time.
  firstDeliveryId: z.string().nullable().default(null),
  fetchBackAt: z.string().nullable().default(null),
  fetchBackOutcome: z.enum(FETCH_BACK_OUTCOMES).nullable().default(null),
  fetchBackVia: z.enum(FETCH_BACK_VIAS).nullable().default(null),
  fetchBackApiCalls: z.int().nullable().default(null),
  fetchBackPaceWaitMs: z.int().nullable().default(null),
  fetchBackDetail: z.string().nullable().default(null),
}) satisfies z.ZodType<{ record: "event" } & EventRow>;

const operationRecord = z.object({
  record: z.literal("operation"),
  merchantId: z.string(),
  id: z.string(),
  transactionId: z.string(),
  type: z.string(),
  amount: z.string(),
  currency: z.string().nullable(),
  isAttempt: z.boolean(),
  hasFailed: z.boolean().nullable(),
  isAccountable: z.boolean().nullable(),
  gatewayOperationId: z.string().nullable(),
  errorCode: z.string().nullable(),
  errorMessage: z.string().nullable(),
  paymentType: z.string().nullable(),
  metadata: z.record(z.string(), z.string()).nullable(),
  createdAt: z.string(),
}) satisfies z.ZodType<{ record: "operation" } & OperationRow>;

const deliveryRecord = z.object({
  record: z.literal("delivery"),
  transactionId: z.string(),
  merchantId: z.string(),
  eventId: z.string(),
  deliveryId: z.string(),
  receivedAt: z.string(),
  duplicate: z.boolean(),
}) satisfies z.ZodType<{ record: "delivery"; transactionId: string } & DeliveryRow>;

const fetchBackRecord = z.object({
  record: z.literal("fetch_back"),
  transactionId: z.string(),
  id: z.int(),
  merchantId: z.string(),
  eventId: z.string(),
  at: z.string(),
  outcome: z.enum(FETCH_BACK_OUTCOMES),
  via: z.enum(FETCH_BACK_VIAS),
  apiCalls: z.int(),
  paceWaitMs: z.int(),
  detail: z.string().nullable(),
}) satisfies z.ZodType<{ record: "fetch_back"; transactionId: string } & FetchBackRow>;

const statusChangeRecord = z.object({
  record: z.literal("status_change"),
  id: z.int(),
  merchantId: z.string(),
  transactionId: z.string(),
  at: z.string(),
  fromStatus: z.string().nullable(),
  toStatus: z.string(),
  eventId: z.string().nullable(),
  eventName: z.string().nullable(),
  readAt: z.string().nullable(),
}) satisfies z.ZodType<{ record: "status_change" } & StatusChangeRow>;

const fulfillmentAttemptRecord = z.object({
  record: z.literal("fulfillment_attempt"),
  id: z.int(),
  merchantId: z.string(),
  transactionId: z.string(),
  attempt: z.int(),
  at: z.string(),
  outcome: z.enum(FULFILLMENT_ATTEMPT_OUTCOMES),
  httpStatus: z.int().nullable(),
  errorClass: z.enum(FULFILLMENT_ATTEMPT_ERRORS).nullable(),
}) satisfies z.ZodType<{ record: "fulfillment_attempt" } & FulfillmentAttemptRow>;

const deadLetterRecord = z.object({
  record: z.literal("dead_letter"),
  id: z.string(),
  queue: z.string(),
  merchantId: z.string().nullable(),
  body: z.unknown(),
  error: z.string().nullable(),
  attempts: z.int(),
  createdAt: z.string(),
  redrivenAt: z.string().nullable(),
}) satisfies z.ZodType<{ record: "dead_letter" } & DeadLetterRow>;

const auditRecord = z.object({
  record: z.literal("audit"),
  id: z.string(),
  at: z.string(),
  action: z.string(),
  target: z.string(),
  requestId: z.string(),
}) satisfies z.ZodType<{ record: "audit" } & AdminAuditRow>;

const archiveRecord = z.discriminatedUnion("record", [
  eventRecord,
  operationRecord,
  deliveryRecord,
  fetchBackRecord,
  statusChangeRecord,
  fulfillmentAttemptRecord,
]);
const pageRecord = z.discriminatedUnion("record", [deadLetterRecord, auditRecord]);

/** The object's bytes: one JSON record per line (NDJSON), gzip-compressed with the runtime's CompressionStream. */
export async function encodeArchive(records: readonly (ArchiveRecord | PageRecord)[]): Promise<Uint8Array<ArrayBuffer>> {
  const text = records.map((record) => `${JSON.stringify(record)}\n`).join("");
  const compressed = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(compressed).arrayBuffer());
}

/** The lines of an object's body, each parsed by `schema`; a line that does not parse throws (the object is corrupt). */
async function decodeLines<S extends z.ZodType>(body: ReadableStream<Uint8Array>, schema: S): Promise<z.infer<S>[]> {
  const text = await new Response(body.pipeThrough(new DecompressionStream("gzip"))).text();
  return text
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => schema.parse(JSON.parse(line)));
}

/** The records of a history's archive object. */
export const decodeArchive = (body: ReadableStream<Uint8Array>): Promise<ArchiveRecord[]> => decodeLines(body, archiveRecord);

/** The records of a page object (dead letters or audit entries). */
export const decodePages = (body: ReadableStream<Uint8Array>): Promise<PageRecord[]> => decodeLines(body, pageRecord);
