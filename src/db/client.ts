import { drizzle } from "drizzle-orm/d1";
import * as schema from "./schema";

/** The drizzle handle every query function takes. */
export type Database = ReturnType<typeof wrap>;

const wrap = (d1: D1Database) => drizzle(d1, { schema });

// drizzle walks the whole schema each time it wraps a binding (~50 µs); the binding outlives requests, so wrap it once.
const opened = new WeakMap<D1Database, Database>();

/** Wraps the D1 binding in drizzle with the schema, once per binding object. */
export function openDatabase(d1: D1Database): Database {
  let db = opened.get(d1);
  if (!db) {
    db = wrap(d1);
    opened.set(d1, db);
  }
  return db;
}
