import type { Database } from "../db/client";
import type { AppConfig, AppEnv } from "../env";
import type { DeliveryQueue } from "../ingest/delivery-queue";
import type { StatusLimiter } from "./status-rate-limit";

/** The Hono context of every route: bindings, and what the app's first middleware sets per request. */
export type AppContext = {
  Bindings: AppEnv;
  Variables: {
    requestId: string;
    /** DB (shard 0) until merchant authentication, then the merchant's shard (src/db/shards.ts). */
    db: Database;
    /** DB: the shard directory and what is global (admin audit, reseal jobs' overview). */
    directoryDb: Database;
    config: AppConfig;
    deliveryQueue: DeliveryQueue;
    statusLimiter: StatusLimiter;
  };
};
