-- Hand-written (issue 13): what a payment's timeline and the pipeline figures need, recorded in the D1 batch that commits
-- the work they describe (src/db/schema.ts, "The timeline of a payment"). Pruned by the retention step (issue 14) by
-- each table's time column through its (merchant_id, <time>) index; nothing else deletes these rows.
CREATE TABLE `webhook_deliveries` (
	`merchant_id` text NOT NULL,
	`event_id` text NOT NULL,
	`delivery_id` text NOT NULL,
	`received_at` text NOT NULL,
	`duplicate` integer NOT NULL,
	PRIMARY KEY(`merchant_id`, `event_id`, `delivery_id`)
);
--> statement-breakpoint
CREATE INDEX `webhook_deliveries_received` ON `webhook_deliveries` (`merchant_id`,`received_at`);--> statement-breakpoint
CREATE TABLE `fetch_backs` (
	`id` integer PRIMARY KEY NOT NULL,
	`merchant_id` text NOT NULL,
	`event_id` text NOT NULL,
	`at` text NOT NULL,
	`outcome` text NOT NULL,
	`via` text NOT NULL,
	`api_calls` integer NOT NULL,
	`pace_wait_ms` integer NOT NULL,
	`detail` text
);
--> statement-breakpoint
CREATE INDEX `fetch_backs_event` ON `fetch_backs` (`merchant_id`,`event_id`,`at`);--> statement-breakpoint
CREATE INDEX `fetch_backs_at` ON `fetch_backs` (`merchant_id`,`at`);--> statement-breakpoint
CREATE TABLE `transaction_status_changes` (
	`id` integer PRIMARY KEY NOT NULL,
	`merchant_id` text NOT NULL,
	`transaction_id` text NOT NULL,
	`at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`from_status` text,
	`to_status` text NOT NULL,
	`event_id` text,
	`event_name` text,
	`read_at` text
);
--> statement-breakpoint
CREATE INDEX `transaction_status_changes_transaction` ON `transaction_status_changes` (`merchant_id`,`transaction_id`,`id`);--> statement-breakpoint
CREATE INDEX `transaction_status_changes_at` ON `transaction_status_changes` (`merchant_id`,`at`);--> statement-breakpoint
CREATE TABLE `fulfillment_attempts` (
	`id` integer PRIMARY KEY NOT NULL,
	`merchant_id` text NOT NULL,
	`transaction_id` text NOT NULL,
	`attempt` integer NOT NULL,
	`at` text NOT NULL,
	`outcome` text NOT NULL,
	`http_status` integer,
	`error_class` text
);
--> statement-breakpoint
CREATE INDEX `fulfillment_attempts_transaction` ON `fulfillment_attempts` (`merchant_id`,`transaction_id`,`id`);--> statement-breakpoint
CREATE INDEX `fulfillment_attempts_at` ON `fulfillment_attempts` (`merchant_id`,`at`);--> statement-breakpoint
-- The list's payment_type filter: without it a rare payment type walks every row of the merchant.
CREATE INDEX `transactions_merchant_payment_type_updated` ON `transactions` (`merchant_id`,`payment_type`,`updated_at`,`id`);--> statement-breakpoint
-- What is waiting (GET /v1/pipeline): few rows are pending at a time, so this partial index stays small.
CREATE INDEX `events_pending` ON `events` (`merchant_id`) WHERE "events"."outcome" = 'pending';
