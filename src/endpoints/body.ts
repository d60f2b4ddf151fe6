import { and, eq } from "drizzle-orm";
import type { Database } from "../db/client";
import { transactionChanges } from "../db/schema";
import { presentTransaction } from "../transactions/present";
import { recordOfChange } from "../transactions/stream";
import type { MessageRow } from "./outbox";

/**
 * The JSON body of a message (contract.md, "What is sent"), the same on every attempt and on replay: its `timestamp` is
 * when the change was applied and `data.transaction` the record as it stood right after it. Null when the change is no
 * longer stored.
 */
export async function messageBody({
  db,
  message,
}: {
  db: Database;
  message: Pick<MessageRow, "merchantId" | "transactionId" | "sequence" | "type">;
}): Promise<string | null> {
  const change = await db
    .select()
    .from(transactionChanges)
    .where(
      and(
        eq(transactionChanges.merchantId, message.merchantId),
        eq(transactionChanges.transactionId, message.transactionId),
        eq(transactionChanges.sequence, message.sequence),
      ),
    )
    .get();
  if (!change) return null;
  const record = recordOfChange(change.record);
  return JSON.stringify({
    type: message.type,
    timestamp: change.createdAt,
    data: {
      merchant_id: message.merchantId,
      sequence: change.sequence,
      previous_status: change.previousStatus,
      transaction: presentTransaction(record.row, record.fulfillment, record.fulfillmentConfigured),
    },
  });
}
