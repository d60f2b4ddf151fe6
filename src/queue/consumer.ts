import type { Database } from "../db/client";
import type { AppConfig, AppEnv } from "../env";

/** What every queue consumer is given: one shard's part of a queue batch, the bindings, that shard's database. */
export interface ConsumerInput {
  batch: MessageBatch<unknown>;
  env: AppEnv;
  db: Database;
  config: AppConfig;
}

/** What a piece of batch-lane work is given: the message's parsed work, the bindings, its shard's database. */
export interface BatchLaneInput<W> {
  work: W;
  env: AppEnv;
  db: Database;
  config: AppConfig;
}
