// Dependencies between the parts of src/ point one way: each top-level folder of src/ and each top-level file is one
// node, and no import (type-only ones included) may close a cycle among them. Run by `npm run lint`.
//
// dependency-cruiser finds cycles between folders itself (`scope: "folder"`), but it counts src/ as one folder, so a
// top-level file is not a node of its own there. The top-level files are therefore split in two kinds, which leaves
// them no way into a cycle through a folder: entry files, which no folder imports, and base files, which import no
// folder. A new top-level file has to be added to one of the two lists.

const entryFiles = ["app", "index", "scheduled"];
const baseFiles = ["env", "errors"];
const topLevelFile = (names) => `^src/(${names.join("|")})\\.ts$`;

/** @type {import("dependency-cruiser").IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-folder-cycle",
      comment: "Folders of src/ import each other one way only: this import closes a cycle between folders.",
      severity: "error",
      scope: "folder",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "entry-file-imported",
      comment: "Entry files (the Worker's handlers, the app, the cron table) sit on top: no folder imports them.",
      severity: "error",
      from: { path: "^src/[^/]+/" },
      to: { path: topLevelFile(entryFiles) },
    },
    {
      name: "base-file-imports-folder",
      comment: "Base files (env, errors) sit below every folder: they import none.",
      severity: "error",
      from: { path: topLevelFile(baseFiles) },
      to: { path: "^src/[^/]+/" },
    },
    {
      name: "unclassified-top-level-file",
      comment: "A new top-level file of src/: list it as an entry file or a base file in .dependency-cruiser.cjs.",
      severity: "error",
      from: { path: "^src/[^/]+\\.ts$", pathNot: topLevelFile([...entryFiles, ...baseFiles]) },
      to: { path: "^src/" },
    },
    {
      name: "top-level-file-cycle",
      comment: "Top-level files of src/ import each other one way only.",
      severity: "error",
      from: { path: "^src/[^/]+\\.ts$" },
      to: { circular: true, viaOnly: { path: "^src/[^/]+\\.ts$" } },
    },
  ],
  options: {
    includeOnly: "^src/",
    exclude: { path: "\\.d\\.ts$" },
    // Type-only imports count: they tie the folders together just the same.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    progress: { type: "none" },
  },
};
