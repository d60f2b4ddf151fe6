CREATE TABLE `alerts` (
	`id` text PRIMARY KEY NOT NULL,
	`merchant_id` text NOT NULL,
	`kind` text NOT NULL,
	`transaction_id` text,
	`state` text NOT NULL,
	`detail` text NOT NULL,
	`opened_at` text NOT NULL,
	`resolved_at` text,
	`checked_at` text NOT NULL,
	`notification_type` text,
	`notification_status` text,
	`notification_attempts` integer DEFAULT 0 NOT NULL,
	`notification_since` text,
	`notification_due_at` text,
	`notification_error` text,
	FOREIGN KEY (`merchant_id`) REFERENCES `merchants`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `alerts_open_once` ON `alerts` (`merchant_id`,`kind`,coalesce("transaction_id", '')) WHERE "alerts"."state" = 'open';--> statement-breakpoint
CREATE INDEX `alerts_merchant_opened` ON `alerts` (`merchant_id`,`opened_at`,`id`);--> statement-breakpoint
CREATE INDEX `alerts_merchant_state_opened` ON `alerts` (`merchant_id`,`state`,`opened_at`,`id`);--> statement-breakpoint
CREATE INDEX `alerts_open_checked` ON `alerts` (`checked_at`) WHERE "alerts"."state" = 'open';--> statement-breakpoint
CREATE INDEX `alerts_notification_due` ON `alerts` (`notification_due_at`) WHERE "alerts"."notification_status" = 'pending';--> statement-breakpoint
CREATE TABLE `alert_scans` (
	`name` text PRIMARY KEY NOT NULL,
	`updated_at` text NOT NULL,
	`merchant_id` text NOT NULL,
	`transaction_id` text NOT NULL
);
--> statement-breakpoint
ALTER TABLE `merchants` ADD `alert_settings` text;--> statement-breakpoint
CREATE INDEX `events_rejected_processed` ON `events` (`merchant_id`,`processed_at`) WHERE "events"."outcome" = 'rejected';
