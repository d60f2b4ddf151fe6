-- Hand-written (issue 14): retention (src/db/schema.ts, "Retention"; src/retention). Transaction histories move to R2
-- past RETENTION_DAYS; these tables say where each merchant's walk is, which objects exist and which transactions each
-- holds. The indexes below serve the export's walk by creation time and the pruning of bookkeeping rows.
CREATE TABLE `retention_cursors` (
	`merchant_id` text PRIMARY KEY NOT NULL,
	`archived_through_updated_at` text,
	`archived_through_id` text,
	`last_run_at` text,
	FOREIGN KEY (`merchant_id`) REFERENCES `merchants`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `archive_objects` (
	`id` integer PRIMARY KEY NOT NULL,
	`key` text NOT NULL,
	`merchant_id` text NOT NULL,
	`day` text NOT NULL,
	`status` text NOT NULL,
	`from_updated_at` text,
	`from_id` text,
	`through_updated_at` text NOT NULL,
	`through_id` text NOT NULL,
	`manifest` text,
	`transactions` integer NOT NULL,
	`events` integer NOT NULL,
	`operations` integer NOT NULL,
	`bytes` integer,
	`created_at` text NOT NULL,
	`stored_at` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `archive_objects_key` ON `archive_objects` (`key`);--> statement-breakpoint
-- A merchant's claims are exclusive: a second `writing` object for the same merchant is refused.
CREATE UNIQUE INDEX `archive_objects_one_writing` ON `archive_objects` (`merchant_id`) WHERE "archive_objects"."status" = 'writing';--> statement-breakpoint
-- WITHOUT ROWID: the primary key is the whole row, so it is stored once instead of as a table plus an index.
CREATE TABLE `archived_histories` (
	`merchant_id` text NOT NULL,
	`transaction_id` text NOT NULL,
	`archive_id` integer NOT NULL,
	PRIMARY KEY(`merchant_id`, `transaction_id`, `archive_id`)
) WITHOUT ROWID;
--> statement-breakpoint
-- GET /v1/transactions/export walks a merchant's transactions by creation time: julianday() puts Smart Router's
-- RFC 3339 times (any offset, any fractional digits) on one UTC scale.
CREATE INDEX `transactions_merchant_created` ON `transactions` (`merchant_id`,julianday("created_at"),`id`);--> statement-breakpoint
CREATE INDEX `batch_units_finished` ON `batch_units` (`finished_at`);--> statement-breakpoint
CREATE INDEX `reconciliation_runs_started` ON `reconciliation_runs` (`started_at`);--> statement-breakpoint
CREATE INDEX `dead_letters_created` ON `dead_letters` (`created_at`);
