-- Webhook deliveries waiting for their merchant's Smart Router budget, parked instead of cycling on the shared queue
-- (src/ingest/parking.ts), and the one pending wake-up per merchant.
CREATE TABLE `parked_deliveries` (
	`merchant_id` text NOT NULL,
	`delivery_id` text NOT NULL,
	`body` text NOT NULL,
	`parked_at` text NOT NULL,
	`claimed_until` text,
	PRIMARY KEY(`merchant_id`, `delivery_id`)
);
--> statement-breakpoint
CREATE INDEX `parked_deliveries_order` ON `parked_deliveries` (`merchant_id`,`parked_at`);
--> statement-breakpoint
CREATE TABLE `parked_wakeups` (
	`merchant_id` text PRIMARY KEY NOT NULL,
	`due_at` text NOT NULL
);
