import { sql } from "drizzle-orm";

/** Current time as ISO 8601 UTC with milliseconds, the one timestamp format stored; taken when the statement runs. */
export const nowIso = sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`;
