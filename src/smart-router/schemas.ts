import { z } from "zod";

/** Decimal string in major units ("10", "22.99", "-5"); Smart Router never sends floats and neither do we. */
export const decimalAmount = z.string().regex(/^-?\d+(\.\d+)?$/, "must be a decimal string");

const optionalText = z.string().nullish();
const metadata = z.record(z.string(), z.string()).nullish();

/** One step of a transaction's history: usually an attempt then its result. Unknown fields are tolerated. */
export const operationSchema = z.looseObject({
  id: z.string().min(1),
  transaction_id: optionalText,
  type: z.string().min(1),
  amount: decimalAmount.nullish(),
  currency: optionalText,
  is_attempt: z.boolean().nullish(),
  has_failed: z.boolean().nullish(),
  is_accountable: z.boolean().nullish(),
  gateway_operation_id: optionalText,
  error_code: optionalText,
  error_message: optionalText,
  payment_type: optionalText,
  metadata,
  created_at: z.string().min(1),
});

/** Smart Router's Transaction (smart-router.md §3). */
export const transactionSchema = z.looseObject({
  id: z.string().regex(/^tr_/),
  project_id: z.string(),
  invoice_id: optionalText,
  customer_id: optionalText,
  gateway_name: optionalText,
  payment_type: optionalText,
  name: optionalText,
  status: z.string().min(1),
  currency: z.string().min(1),
  metadata,
  sandbox: z.boolean().nullish(),
  error_code: optionalText,
  error_message: optionalText,
  three_d_s_status: optionalText,
  amount: decimalAmount,
  authorized_amount: decimalAmount.nullish(),
  captured_amount: decimalAmount.nullish(),
  refunded_amount: decimalAmount.nullish(),
  available_amount: decimalAmount.nullish(),
  voided_amount: decimalAmount.nullish(),
  authorized: z.boolean().nullish(),
  captured: z.boolean().nullish(),
  voided: z.boolean().nullish(),
  refunded: z.boolean().nullish(),
  chargedback: z.boolean().nullish(),
  created_at: z.string().min(1),
  authorized_at: optionalText,
  captured_at: optionalText,
  refunded_at: optionalText,
  voided_at: optionalText,
  chargedback_at: optionalText,
  operations: z.array(operationSchema).nullish(),
});

export type TransactionSnapshot = z.infer<typeof transactionSchema>;
export type OperationSnapshot = z.infer<typeof operationSchema>;

/** Smart Router's Event (smart-router.md §2); `data.transaction` is present for transaction events. */
export const eventSchema = z.looseObject({
  id: z.string().regex(/^ev_/),
  project_id: z.string().nullish(),
  name: z.string().min(1),
  sandbox: z.boolean().nullish(),
  fired_at: z.string().min(1),
  data: z
    .looseObject({
      transaction: transactionSchema.nullish(),
    })
    .nullish(),
});

export type SmartRouterEvent = z.infer<typeof eventSchema>;

export const eventEnvelope = z.looseObject({ success: z.literal(true), event: eventSchema });
export const eventListEnvelope = z.looseObject({ success: z.literal(true), events: z.array(eventSchema), has_more: z.boolean() });
export const transactionEnvelope = z.looseObject({ success: z.literal(true), transaction: transactionSchema });
export const transactionListEnvelope = z.looseObject({
  success: z.literal(true),
  transactions: z.array(transactionSchema),
  has_more: z.boolean(),
});
export const errorEnvelope = z.looseObject({
  success: z.literal(false).optional(),
  error_type: z.string().optional(),
  message: z.string().optional(),
});
