-- Issue 14, shards (src/db/shards.ts): the merchant -> shard directory, read and written on DB (shard 0) only. Merchants
-- registered before it all live on DB: they are entered as shard 0 (on another shard the merchants table is empty here).
CREATE TABLE `merchant_shards` (
	`merchant_id` text PRIMARY KEY NOT NULL,
	`shard` integer NOT NULL,
	`smart_router_project_id` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `merchant_shards_project` ON `merchant_shards` (`smart_router_project_id`);--> statement-breakpoint
CREATE INDEX `merchant_shards_shard` ON `merchant_shards` (`shard`);--> statement-breakpoint
INSERT INTO `merchant_shards` (`merchant_id`, `shard`, `smart_router_project_id`, `created_at`)
	SELECT `id`, 0, `smart_router_project_id`, `created_at` FROM `merchants`;
