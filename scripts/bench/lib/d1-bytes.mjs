// What a D1 database occupies, read from the SQLite file Miniflare keeps for it: SQLite's dbstat (node:sqlite) over a
// copy of the file with its WAL (so committed pages count), per table with its indexes. Used by the storage section and
// by the soak run (scripts/soak.mjs).
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";

/** Every D1 SQLite file under Miniflare's persistence directory (one per database once it has been opened). */
export function d1Files(persist) {
  const dir = path.join(persist, "d1");
  const files = [];
  const walk = (at) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const full = path.join(at, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".sqlite")) files.push(full);
    }
  };
  if (existsSync(dir)) walk(dir);
  return files;
}

/** Runs `read(db)` on a copy of a D1 SQLite file (with its WAL), then removes the copy. */
export function withD1Copy(source, read) {
  const dir = mkdtempSync(path.join(tmpdir(), "sre-bench-dbstat-"));
  try {
    const copy = path.join(dir, "db.sqlite");
    for (const suffix of ["", "-wal", "-shm"]) {
      if (existsSync(`${source}${suffix}`)) copyFileSync(`${source}${suffix}`, `${copy}${suffix}`);
    }
    const db = new DatabaseSync(copy);
    try {
      return read(db);
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Bytes per table, its indexes included, of an open database, with each table's row count.
 * `vacuum` compacts it first: after deletions, the pages the rows left are free and D1 reuses them for new rows, so the
 * compacted size is what the kept rows occupy.
 */
export function tableBytes(db, { vacuum = false } = {}) {
  if (vacuum) db.exec("VACUUM");
  const owners = new Map(
    db
      .prepare("SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')")
      .all()
      .map((r) => [r.name, r.tbl_name]),
  );
  const pageSize = db.prepare("PRAGMA page_size").get().page_size;
  const pageCount = db.prepare("PRAGMA page_count").get().page_count;
  const tables = {};
  for (const { name, bytes, payload } of db
    .prepare("SELECT name, SUM(pgsize) AS bytes, SUM(payload) AS payload FROM dbstat GROUP BY name")
    .all()) {
    const table = owners.get(name) ?? name;
    tables[table] ??= { rows: 0, bytes: 0, tableBytes: 0, indexBytes: 0, payloadBytes: 0, indexes: {} };
    tables[table].bytes += bytes;
    tables[table].payloadBytes += payload;
    if (name === table) tables[table].tableBytes += bytes;
    else {
      tables[table].indexBytes += bytes;
      tables[table].indexes[name] = bytes;
    }
  }
  for (const [table, entry] of Object.entries(tables)) {
    if (table.startsWith("sqlite_")) continue;
    entry.rows = db.prepare(`SELECT count(*) AS n FROM "${table.replaceAll('"', '""')}"`).get().n;
  }
  return { fileBytes: pageSize * pageCount, pageSize, tables };
}

/** Our tables (not SQLite's, D1's or Miniflare's own), largest first, with bytes per payment. */
export function perPayment(measure, payments) {
  const ours = Object.entries(measure.tables)
    .filter(([table]) => !/^(sqlite_|_cf_|d1_)/.test(table))
    .map(([table, entry]) => ({ table, ...entry, bytesPerPayment: payments > 0 ? entry.bytes / payments : null }))
    .sort((a, b) => b.bytes - a.bytes);
  const total = ours.reduce((sum, entry) => sum + entry.bytes, 0);
  return {
    tables: ours,
    bytes: total,
    bytesPerPayment: payments > 0 ? total / payments : null,
    fileBytes: measure.fileBytes,
    pageSize: measure.pageSize,
  };
}
