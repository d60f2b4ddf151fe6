import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

// Runs before every test file; applying is idempotent (all files share one database, see vitest.config.ts).
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
