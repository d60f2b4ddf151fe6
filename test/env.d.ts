import type { D1Migration } from "cloudflare:test";
import type { AppEnv } from "../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends Omit<AppEnv, keyof Env> {
      TEST_MIGRATIONS: D1Migration[];
      PROPERTY_RUNS?: string;
      ADMIN_TOKEN: string;
      SECRETS_KEY: string;
    }
  }
}
