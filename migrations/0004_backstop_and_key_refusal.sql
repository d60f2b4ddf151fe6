CREATE TABLE `event_log_cursors` (
	`merchant_id` text PRIMARY KEY NOT NULL,
	`watermark_event_id` text,
	`watermark_fired_at` text,
	`events_walked` integer DEFAULT 0 NOT NULL,
	`api_calls` integer DEFAULT 0 NOT NULL,
	`last_run_at` text,
	`last_error` text,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`merchant_id`) REFERENCES `merchants`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
ALTER TABLE `merchants` ADD `smart_router_key_refused_at` text;--> statement-breakpoint
ALTER TABLE `merchants` ADD `smart_router_key_refused_reason` text;