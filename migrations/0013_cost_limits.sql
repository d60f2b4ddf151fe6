-- Issue 20, cost limits per merchant: export_leases holds the slots of streaming exports (at most 2 per merchant,
-- src/transactions/export-slots.ts); batches_open serves the open-batch count of POST /v1/batches (at most 5 open).
CREATE TABLE `export_leases` (
	`id` text PRIMARY KEY NOT NULL,
	`merchant_id` text NOT NULL,
	`expires_at` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`merchant_id`) REFERENCES `merchants`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `export_leases_merchant` ON `export_leases` (`merchant_id`,`expires_at`);--> statement-breakpoint
CREATE INDEX `batches_open` ON `batches` (`merchant_id`,`created_at`) WHERE "batches"."status" IN ('queued', 'running');