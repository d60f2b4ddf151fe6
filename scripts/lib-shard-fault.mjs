// A D1 shard made to fail under a running `wrangler dev` (`npm run chaos -- --shard-down`): its tables renamed away in
// the local SQLite file Miniflare keeps for it, as a shard that lost its schema would be, and renamed back to heal it.
// node:sqlite writes the file while workerd has it open: both go through SQLite's own file locking and WAL, so the
// worker's next statement sees the schema change (and fails with "no such table") without a restart.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";

/** The suffix a table is renamed to while its shard is down (the integration test's choice too). */
const DOWN_SUFFIX = "_down";
/** How long one rename transaction waits on workerd's lock before giving up (SQLite busy timeout). */
const BUSY_TIMEOUT_MS = 10_000;
/** Attempts of the whole rename before the fault injection fails the run (each waits up to BUSY_TIMEOUT_MS). */
const ATTEMPTS = 5;

/** Every D1 SQLite file of a local persistence folder (`--persist-to`): one per database wrangler has opened. */
export function d1SqliteFiles(persistDir) {
  const dir = join(persistDir, "v3", "d1", "miniflare-D1DatabaseObject");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith(".sqlite"))
    .map((name) => join(dir, name));
}

/**
 * The SQLite file holding merchant `merchantId`'s row (its shard: a merchant lives on exactly one), or null. Read-only,
 * so looking never disturbs the worker.
 */
export function shardFileOf(persistDir, merchantId) {
  const found = [];
  for (const file of d1SqliteFiles(persistDir)) {
    const db = new DatabaseSync(file, { readOnly: true, timeout: BUSY_TIMEOUT_MS });
    try {
      const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'merchants'").get();
      if (hasTable && db.prepare("SELECT 1 FROM merchants WHERE id = ?").get(merchantId)) found.push(file);
    } finally {
      db.close();
    }
  }
  // Two files with the row would mean the placement (or this lookup) is wrong: the fault would hit the wrong merchant.
  if (found.length > 1) throw new Error(`merchant ${merchantId} found in ${found.length} D1 files: ${found.join(", ")}`);
  return found[0] ?? null;
}

/** Our tables in the file: everything but SQLite's, D1's and Miniflare's own (renaming those would break D1 itself). */
function ourTables(db) {
  return db
    .prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' " +
        "AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE 'd1\\_%' ESCAPE '\\' ORDER BY name",
    )
    .all()
    .map((row) => row.name);
}

/** Runs `rename(db)` in one IMMEDIATE transaction (the shard fails or heals at once), retried on a busy lock. */
async function inOneTransaction(file, rename) {
  let lastError = null;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const db = new DatabaseSync(file, { timeout: BUSY_TIMEOUT_MS });
    try {
      db.exec("BEGIN IMMEDIATE");
      try {
        const result = rename(db);
        db.exec("COMMIT");
        return result;
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
    } catch (error) {
      lastError = error;
      // Only a lock held by workerd is worth another try; anything else (a missing table) is a bug of this script.
      if (!/busy|locked/i.test(String(error.message))) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    } finally {
      db.close();
    }
  }
  throw new Error(`could not rename the tables of ${file} after ${ATTEMPTS} attempts: ${lastError?.message}`);
}

/** Makes the shard in `file` fail: every one of our tables renamed to `<name>_down`. Answers the tables renamed. */
export async function breakShard(file) {
  return inOneTransaction(file, (db) => {
    const tables = ourTables(db).filter((name) => !name.endsWith(DOWN_SUFFIX));
    if (tables.length === 0) throw new Error(`${file} has none of our tables to rename`);
    for (const table of tables) db.exec(`ALTER TABLE "${table}" RENAME TO "${table}${DOWN_SUFFIX}"`);
    return tables;
  });
}

/** Heals the shard `breakShard` broke: the same tables renamed back. */
export async function healShard(file, tables) {
  return inOneTransaction(file, (db) => {
    for (const table of tables) db.exec(`ALTER TABLE "${table}${DOWN_SUFFIX}" RENAME TO "${table}"`);
    return tables;
  });
}
