CREATE TABLE `dead_letters` (
	`id` text PRIMARY KEY NOT NULL,
	`queue` text NOT NULL,
	`merchant_id` text,
	`body` text NOT NULL,
	`error` text,
	`attempts` integer NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) NOT NULL,
	`redriven_at` text
);
--> statement-breakpoint
CREATE INDEX `dead_letters_merchant` ON `dead_letters` (`merchant_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `events` (
	`merchant_id` text NOT NULL,
	`id` text NOT NULL,
	`name` text,
	`transaction_id` text,
	`fired_at` text,
	`outcome` text NOT NULL,
	`deliveries` integer DEFAULT 1 NOT NULL,
	`first_received_at` text NOT NULL,
	`processed_at` text,
	`detail` text,
	PRIMARY KEY(`merchant_id`, `id`)
);
--> statement-breakpoint
CREATE INDEX `events_transaction` ON `events` (`merchant_id`,`transaction_id`,`fired_at`,`id`);--> statement-breakpoint
CREATE TABLE `fulfillments` (
	`merchant_id` text NOT NULL,
	`transaction_id` text NOT NULL,
	`message_id` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_error` text,
	`lease_until` text,
	`requested_at` text NOT NULL,
	`delivered_at` text,
	PRIMARY KEY(`merchant_id`, `transaction_id`)
);
--> statement-breakpoint
CREATE INDEX `fulfillments_status` ON `fulfillments` (`status`,`requested_at`);--> statement-breakpoint
CREATE TABLE `operations` (
	`merchant_id` text NOT NULL,
	`id` text NOT NULL,
	`transaction_id` text NOT NULL,
	`type` text NOT NULL,
	`amount` text NOT NULL,
	`currency` text,
	`is_attempt` integer NOT NULL,
	`has_failed` integer,
	`is_accountable` integer,
	`gateway_operation_id` text,
	`error_code` text,
	`error_message` text,
	`payment_type` text,
	`metadata` text,
	`created_at` text NOT NULL,
	PRIMARY KEY(`merchant_id`, `id`)
);
--> statement-breakpoint
CREATE INDEX `operations_transaction` ON `operations` (`merchant_id`,`transaction_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `transactions` (
	`merchant_id` text NOT NULL,
	`id` text NOT NULL,
	`project_id` text NOT NULL,
	`invoice_id` text,
	`customer_id` text,
	`name` text,
	`payment_type` text,
	`gateway_name` text,
	`status` text NOT NULL,
	`currency` text NOT NULL,
	`amount` text NOT NULL,
	`authorized_amount` text NOT NULL,
	`captured_amount` text NOT NULL,
	`refunded_amount` text NOT NULL,
	`available_amount` text NOT NULL,
	`voided_amount` text NOT NULL,
	`metadata` text NOT NULL,
	`sandbox` integer NOT NULL,
	`error_code` text,
	`error_message` text,
	`three_d_s_status` text,
	`chargedback` integer DEFAULT false NOT NULL,
	`created_at` text NOT NULL,
	`snapshot_version` text NOT NULL,
	`last_event_id` text,
	`last_event_name` text,
	`last_event_fired_at` text,
	`updated_at` text NOT NULL,
	PRIMARY KEY(`merchant_id`, `id`),
	FOREIGN KEY (`merchant_id`) REFERENCES `merchants`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `transactions_merchant_updated` ON `transactions` (`merchant_id`,`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `transactions_merchant_status_updated` ON `transactions` (`merchant_id`,`status`,`updated_at`,`id`);