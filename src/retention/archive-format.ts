import { z } from "zod";
import type { EventRow, OperationRow } from "../db/rows";
import { EVENT_OUTCOMES } from "../db/schema";

/** What the archive needs of an R2 bucket (the `ARCHIVE` binding); tests hand in one that fails where they choose. */
export type ArchiveBucket = Pick<R2Bucket, "get" | "head" | "put">;

/** One line of an archive object: an inbox row or an operation row, exactly as drizzle reads it from D1. */
export type ArchiveRecord = ({ record: "event" } & EventRow) | ({ record: "operation" } & OperationRow);

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

const archiveRecord = z.discriminatedUnion("record", [eventRecord, operationRecord]);

/** The object's bytes: one JSON record per line (NDJSON), gzip-compressed with the runtime's CompressionStream. */
export async function encodeArchive(records: readonly ArchiveRecord[]): Promise<Uint8Array<ArrayBuffer>> {
  const text = records.map((record) => `${JSON.stringify(record)}\n`).join("");
  const compressed = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(compressed).arrayBuffer());
}

/** The records of an archive object's body; a line that is not a record of this format throws (the object is corrupt). */
export async function decodeArchive(body: ReadableStream<Uint8Array>): Promise<ArchiveRecord[]> {
  const text = await new Response(body.pipeThrough(new DecompressionStream("gzip"))).text();
  return text
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => archiveRecord.parse(JSON.parse(line)));
}
