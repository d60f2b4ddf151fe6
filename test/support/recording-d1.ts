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
