/** The D1 schema, one module per area; drizzle-kit reads this barrel (drizzle.config.ts). */

export * from "./alerts";
export * from "./columns";
export * from "./endpoints";
export * from "./fulfillment";
export * from "./jobs";
export * from "./merchants";
export * from "./moves";
export * from "./parking";
export * from "./retention";
export * from "./shards";
export * from "./timeline";
export * from "./transactions";
