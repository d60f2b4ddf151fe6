-- Issue 21, shards you can watch (src/db/shard-growth.ts, src/alerts/shard-capacity.ts): each shard's size sampled by the
-- cron once an hour, kept 8 days (days to full at the last 7 days' growth), and the admin's own alerts (shard_capacity
-- at 80, 90 and 95 %). Read and written on DB (shard 0) only; every shard carries the tables, as it carries the whole schema.
CREATE TABLE `shard_size_samples` (
	`shard` integer NOT NULL,
	`hour` text NOT NULL,
	`sampled_at` text NOT NULL,
	`bytes` integer NOT NULL,
	PRIMARY KEY(`shard`, `hour`)
);
--> statement-breakpoint
CREATE TABLE `admin_alerts` (
	`id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`subject` text NOT NULL,
	`state` text NOT NULL,
	`detail` text NOT NULL,
	`opened_at` text NOT NULL,
	`resolved_at` text,
	`checked_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `admin_alerts_open_once` ON `admin_alerts` (`kind`,`subject`) WHERE "admin_alerts"."state" = 'open';--> statement-breakpoint
CREATE INDEX `admin_alerts_opened` ON `admin_alerts` (`opened_at`,`id`);--> statement-breakpoint
CREATE INDEX `admin_alerts_state_opened` ON `admin_alerts` (`state`,`opened_at`,`id`);
