CREATE TABLE `batch_units` (
	`unit_id` text PRIMARY KEY NOT NULL,
	`batch_id` text,
	`finished_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `batches` (
	`id` text PRIMARY KEY NOT NULL,
	`merchant_id` text NOT NULL,
	`kind` text NOT NULL,
	`status` text NOT NULL,
	`params` text NOT NULL,
	`total` integer DEFAULT 0 NOT NULL,
	`done` integer DEFAULT 0 NOT NULL,
	`failed` integer DEFAULT 0 NOT NULL,
	`api_calls` integer DEFAULT 0 NOT NULL,
	`outstanding` integer DEFAULT 0 NOT NULL,
	`error` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`started_at` text,
	`finished_at` text,
	FOREIGN KEY (`merchant_id`) REFERENCES `merchants`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `batches_merchant` ON `batches` (`merchant_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `reconciliation_runs` (
	`id` text PRIMARY KEY NOT NULL,
	`started_at` text NOT NULL,
	`found` integer DEFAULT 0 NOT NULL,
	`refreshed` integer DEFAULT 0 NOT NULL,
	`fixed` integer DEFAULT 0 NOT NULL,
	`last_update_at` text
);
--> statement-breakpoint
ALTER TABLE `transactions` ADD `reconciled_at` text;--> statement-breakpoint
CREATE INDEX `transactions_status_updated` ON `transactions` (`status`,`updated_at`);