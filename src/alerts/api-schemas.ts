import { z } from "@hono/zod-openapi";
import { ALERT_STATES } from "../db/schema";
import { listTransactionsQuery, strictQuery } from "../transactions/api-schemas";
import { ADMIN_ALERT_KINDS } from "./admin-alerts";
import { ALERT_KINDS } from "./rules";
import { ALERT_LIST_STATES } from "./store";

const STATE_HINT = `state must be one of: ${ALERT_LIST_STATES.join(", ")}`;

/** Query of `GET /v1/alerts` and `GET /admin/alerts`: `limit` and `cursor` follow the rules of the transactions list. */
export const listAlertsQuery = strictQuery({
  state: z
    // A repeated key arrives as an array, which gets its own message.
    .enum(ALERT_LIST_STATES, { error: (issue) => (Array.isArray(issue.input) ? "state must be given once" : STATE_HINT) })
    .optional()
    .openapi({ description: "`open` (the default): alerts whose condition still holds; `all`: resolved ones too." }),
  limit: listTransactionsQuery.shape.limit,
  cursor: listTransactionsQuery.shape.cursor,
});

const timestamp = z.string().openapi({ format: "date-time" });

/** One alert, as `/v1/alerts` and `/admin/alerts` show it. */
export const alertSchema = z
  .object({
    id: z.string().openapi({ example: "al_0f8e2b7c4d5a4b8c9e1f2a3b4c5d6e7f" }),
    kind: z.string().openapi({
      description:
        `On \`/v1/alerts\`, one of ${ALERT_KINDS.join(", ")}. Per transaction: authorized and not captured for the merchant's hours; an APM ` +
        "payment pending for its minutes; refunded more than captured; a dispute opened on a payment whose fulfilment was " +
        "delivered. Per merchant (`transaction_id` null): forged webhook deliveries over its hourly threshold; Smart Router " +
        "refusing its secret key; fulfilment notifications failing for its minutes. On `/admin/alerts`, one of " +
        `${ADMIN_ALERT_KINDS.join(", ")}: a D1 shard past 80, 90 or 95 % of its capacity (one alert per threshold).`,
      example: "authorized_not_captured",
    }),
    state: z.enum(ALERT_STATES).openapi({ description: "`open` while the condition holds; `resolved` once a check found it cleared." }),
    transaction_id: z.string().nullable(),
    opened_at: timestamp,
    resolved_at: timestamp.nullable(),
    acknowledged_at: timestamp.nullable().openapi({
      description:
        "When the merchant acknowledged the alert (`POST /v1/alerts/{id}/acknowledge`), which resolved it; null otherwise (always null on `/admin/alerts`).",
    }),
    detail: z.string().openapi({ description: "What was found and what to do, in one sentence; its figures are as of the last check." }),
  })
  .openapi("Alert");

/** One page of alerts, the answer of `GET /v1/alerts` and `GET /admin/alerts`. */
export const alertPageResponse = z
  .object({
    alerts: z.array(alertSchema).openapi({ description: "Most recently opened first; ties broken by id, descending." }),
    next_cursor: z.string().nullable().openapi({ description: "Pass as `cursor` for the next page; null on the last page." }),
  })
  .openapi("AlertPage");
