// Lets Node 24 (type stripping) import the worker's TypeScript sources, which use extensionless relative imports
// ("../smart-router/client") as the bundler expects. Register before importing anything under src/.
import { registerHooks } from "node:module";

registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context);
    } catch (error) {
      const relative = specifier.startsWith("./") || specifier.startsWith("../");
      // A folder ("../db/schema") is ERR_UNSUPPORTED_DIR_IMPORT, a file without its extension ERR_MODULE_NOT_FOUND.
      const missing = error?.code === "ERR_MODULE_NOT_FOUND" || error?.code === "ERR_UNSUPPORTED_DIR_IMPORT";
      if (!relative || !missing || /\.[cm]?[jt]s$/.test(specifier)) throw error;
      for (const candidate of [`${specifier}.ts`, `${specifier}/index.ts`]) {
        try {
          return nextResolve(candidate, context);
        } catch {}
      }
      throw error;
    }
  },
});
