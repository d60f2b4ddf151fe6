-- Issue 22, endpoints: each applied status change is numbered per transaction (transaction_streams), kept with the record
-- as it stood (transaction_changes) and owed to every subscribed endpoint (endpoint_messages), in the change's own D1
-- batch (src/transactions/stream.ts); replays are jobs in the batch lane (endpoint_replays).
CREATE TABLE `endpoints` (
	`id` text PRIMARY KEY NOT NULL,
	`merchant_id` text NOT NULL,
	`url` text NOT NULL,
	`events` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`status` text NOT NULL,
	`secret_ciphertext` text NOT NULL,
	`secret_key_id` text NOT NULL,
	`previous_secret_ciphertext` text,
	`previous_secret_key_id` text,
	`previous_secret_valid_until` text,
	`failing_since` text,
	`disabled_at` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	FOREIGN KEY (`merchant_id`) REFERENCES `merchants`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `endpoints_merchant_created` ON `endpoints` (`merchant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `endpoints_disabled` ON `endpoints` (`merchant_id`) WHERE "endpoints"."status" = 'disabled';--> statement-breakpoint
CREATE TABLE `transaction_streams` (
	`merchant_id` text NOT NULL,
	`transaction_id` text NOT NULL,
	`sequence` integer NOT NULL,
	`status` text,
	`captured` integer DEFAULT false NOT NULL,
	PRIMARY KEY(`merchant_id`, `transaction_id`)
);
--> statement-breakpoint
CREATE TABLE `transaction_changes` (
	`merchant_id` text NOT NULL,
	`transaction_id` text NOT NULL,
	`sequence` integer NOT NULL,
	`previous_status` text,
	`status` text NOT NULL,
	`record` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	PRIMARY KEY(`merchant_id`, `transaction_id`, `sequence`)
);
--> statement-breakpoint
CREATE TABLE `endpoint_messages` (
	`seq` integer PRIMARY KEY NOT NULL,
	`id` text NOT NULL,
	`merchant_id` text NOT NULL,
	`endpoint_id` text NOT NULL,
	`transaction_id` text NOT NULL,
	`sequence` integer NOT NULL,
	`position` integer NOT NULL,
	`type` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_http_status` integer,
	`last_error` text,
	`first_attempt_at` text,
	`next_attempt_at` text NOT NULL,
	`lease_until` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`delivered_at` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `endpoint_messages_lane` ON `endpoint_messages` (`endpoint_id`,`transaction_id`,`position`);--> statement-breakpoint
CREATE INDEX `endpoint_messages_created` ON `endpoint_messages` (`endpoint_id`,`created_at`,`seq`);--> statement-breakpoint
CREATE INDEX `endpoint_messages_due` ON `endpoint_messages` (`next_attempt_at`) WHERE "endpoint_messages"."status" = 'pending';--> statement-breakpoint
CREATE TABLE `endpoint_replays` (
	`id` text PRIMARY KEY NOT NULL,
	`merchant_id` text NOT NULL,
	`endpoint_id` text NOT NULL,
	`since` text NOT NULL,
	`until` text NOT NULL,
	`types` text,
	`dry_run` integer NOT NULL,
	`status` text NOT NULL,
	`total` integer NOT NULL,
	`sent` integer DEFAULT 0 NOT NULL,
	`failed` integer DEFAULT 0 NOT NULL,
	`cursor` text,
	`error` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`finished_at` text
);
--> statement-breakpoint
CREATE INDEX `endpoint_replays_endpoint` ON `endpoint_replays` (`merchant_id`,`endpoint_id`,`created_at`);--> statement-breakpoint
-- Records from before streams: numbered on from the status changes the timeline kept (at least 1), their first capture
-- already announced when a fulfilment row exists, so neither a sequence restarts nor an old capture is announced again.
INSERT INTO `transaction_streams` (`merchant_id`, `transaction_id`, `sequence`, `status`, `captured`)
SELECT t.merchant_id, t.id,
	max(1, (SELECT count(*) FROM `transaction_status_changes` AS h WHERE h.merchant_id = t.merchant_id AND h.transaction_id = t.id)),
	t.status,
	EXISTS (SELECT 1 FROM `fulfillments` AS f WHERE f.merchant_id = t.merchant_id AND f.transaction_id = t.id)
FROM `transactions` AS t;
