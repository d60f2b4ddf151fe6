// The shapes the console reads, by name: each one the type that the API's OpenAPI document gives (api-types.ts, generated
// from GET /v1/openapi.json by `npm run gen:api-types`); nothing here is written by hand but the names.
import type { components } from "./api-types";

type Schemas = components["schemas"];

/** The error envelope of every non-2xx answer. */
export type ErrorEnvelope = Schemas["Error"];

export type Merchant = Schemas["Merchant"];
export type MerchantPage = Schemas["MerchantPage"];

export type Transaction = Schemas["Transaction"];
export type TransactionPage = Schemas["TransactionPage"];

export type Timeline = Schemas["Timeline"];
export type TimelineEntry = Timeline["timeline"][number];
export type TimelineKind = TimelineEntry["kind"];

export type Batch = Schemas["Batch"];
export type BatchPage = Schemas["BatchPage"];

/** The statuses of a batch that may still change (the panel offers to cancel those and keeps polling). */
export const BATCH_ACTIVE_STATUSES: readonly Batch["status"][] = ["queued", "running"];

export type Alert = Schemas["Alert"];
export type AlertPage = Schemas["AlertPage"];

export type Endpoint = Schemas["Endpoint"];
export type EndpointPage = Schemas["EndpointPage"];
export type EndpointMessagePage = Schemas["EndpointMessagePage"];
export type EndpointMessage = EndpointMessagePage["messages"][number];
export type Replay = Schemas["ReplayResponse"]["replay"];

/** The statuses of a replay that may still change (the panel keeps polling those). */
export const REPLAY_ACTIVE_STATUSES: readonly Replay["status"][] = ["queued", "running"];

export type ShardList = Schemas["ShardStatus"];
export type Shard = ShardList["shards"][number];

export type Pipeline = Schemas["Pipeline"]["pipeline"];
export type Budget = Schemas["Budget"]["budget"];

/** The part of the OpenAPI document itself that the console reads: which statuses the list filter takes. */
export interface OpenApiDocument {
  paths?: Record<string, Record<string, { parameters?: { name: string; in: string; schema?: { enum?: string[] } }[] }>>;
}
