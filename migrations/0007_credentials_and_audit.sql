CREATE TABLE `admin_audit` (
	`id` text PRIMARY KEY NOT NULL,
	`at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`action` text NOT NULL,
	`target` text NOT NULL,
	`request_id` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `admin_audit_at` ON `admin_audit` (`at`,`id`);--> statement-breakpoint
CREATE TABLE `reseal_jobs` (
	`id` text PRIMARY KEY NOT NULL,
	`status` text NOT NULL,
	`total` integer DEFAULT 0 NOT NULL,
	`done` integer DEFAULT 0 NOT NULL,
	`cursor` text,
	`error` text,
	`started_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`finished_at` text
);
--> statement-breakpoint
ALTER TABLE `merchants` ADD `webhook_password_previous_hash` text;--> statement-breakpoint
ALTER TABLE `merchants` ADD `webhook_password_previous_valid_until` text;--> statement-breakpoint
ALTER TABLE `merchants` ADD `forged_deliveries` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `merchants` ADD `last_forged_at` text;--> statement-breakpoint
ALTER TABLE `merchants` ADD `fulfillment_secret_previous_ciphertext` text;--> statement-breakpoint
ALTER TABLE `merchants` ADD `fulfillment_secret_previous_key_id` text;--> statement-breakpoint
ALTER TABLE `merchants` ADD `fulfillment_secret_previous_valid_until` text;--> statement-breakpoint
CREATE UNIQUE INDEX `merchants_smart_router_project` ON `merchants` (`smart_router_project_id`);