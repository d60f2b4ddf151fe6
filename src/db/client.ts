import { drizzle } from "drizzle-orm/d1";
import * as schema from "./schema";

/** The drizzle handle every query function takes. */
export type Database = ReturnType<typeof openDatabase>;

/** Wraps the D1 binding in drizzle with the schema. */
export function openDatabase(d1: D1Database) {
  return drizzle(d1, { schema });
}
