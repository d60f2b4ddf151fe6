/** The D1 binding, recording the SQL and parameters of every statement the worker prepares through it. */
export function recordingD1(real: D1Database) {
  const statements: { sql: string; params: unknown[] }[] = [];
  const d1 = new Proxy(real, {
    get(target, property) {
      if (property === "prepare") {
        return (sql: string) => {
          const prepared = target.prepare(sql);
          return new Proxy(prepared, {
            get(statement, name) {
              if (name === "bind") {
                return (...params: unknown[]) => {
                  statements.push({ sql, params });
                  return statement.bind(...params);
                };
              }
              const value = Reflect.get(statement, name);
              return typeof value === "function" ? value.bind(statement) : value;
            },
          });
        };
      }
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { d1, statements };
}

/** The D1 binding, summing the rows each batch wrote and keeping the SQL it ran. */
export function meteredD1(real: D1Database) {
  const meter = { rowsWritten: 0, sql: [] as string[] };
  const d1 = new Proxy(real, {
    get(target, property) {
      if (property === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          const results = await target.batch(statements);
          for (const result of results) meter.rowsWritten += result.meta.rows_written ?? 0;
          return results;
        };
      }
      if (property === "prepare") {
        return (sql: string) => {
          meter.sql.push(sql);
          return target.prepare(sql);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { d1, meter };
}
