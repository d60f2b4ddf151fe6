-- Issue 21 item 5, cutting D1 rows written per webhook (docs/benchmarks.md "Where the floor is"). D1 bills every row and
-- index entry written; a table with a text primary key stores each row twice (the rowid table and the key's autoindex).
-- WITHOUT ROWID makes the primary key the table itself: one entry fewer per insert and per delete for operations,
-- records (transactions), references and the fulfilment outbox. Each table is rebuilt (SQLite cannot change it in
-- place) with its indexes and the move triggers of 0022, as they were; nothing reads their rowid. The inbox (events)
-- stays a rowid table: without statistics the planner then takes its primary key's merchant prefix over
-- `events_transaction` and `events_pending` (the console's query-plan tests), and the move's copy would sort each page.
-- Also: the fulfilment outbox's status index holds pending rows only (`fulfillments_pending`): delivered and failed rows,
-- which only grow, leave it, and marking a row delivered deletes one entry instead of moving it.
CREATE TABLE `__new_transactions` (
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
	`updated_at` text NOT NULL, `reconciled_at` text, `status_changes` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`merchant_id`, `id`),
	FOREIGN KEY (`merchant_id`) REFERENCES `merchants`(`id`) ON UPDATE no action ON DELETE no action
) WITHOUT ROWID;--> statement-breakpoint
INSERT INTO `__new_transactions` (`merchant_id`, `id`, `project_id`, `invoice_id`, `customer_id`, `name`, `payment_type`, `gateway_name`, `status`, `currency`, `amount`, `authorized_amount`, `captured_amount`, `refunded_amount`, `available_amount`, `voided_amount`, `metadata`, `sandbox`, `error_code`, `error_message`, `three_d_s_status`, `chargedback`, `created_at`, `snapshot_version`, `last_event_id`, `last_event_name`, `last_event_fired_at`, `updated_at`, `reconciled_at`, `status_changes`) SELECT `merchant_id`, `id`, `project_id`, `invoice_id`, `customer_id`, `name`, `payment_type`, `gateway_name`, `status`, `currency`, `amount`, `authorized_amount`, `captured_amount`, `refunded_amount`, `available_amount`, `voided_amount`, `metadata`, `sandbox`, `error_code`, `error_message`, `three_d_s_status`, `chargedback`, `created_at`, `snapshot_version`, `last_event_id`, `last_event_name`, `last_event_fired_at`, `updated_at`, `reconciled_at`, `status_changes` FROM `transactions`;--> statement-breakpoint
DROP TABLE `transactions`;--> statement-breakpoint
ALTER TABLE `__new_transactions` RENAME TO `transactions`;--> statement-breakpoint
CREATE INDEX `transactions_merchant_updated` ON `transactions` (`merchant_id`,`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `transactions_merchant_status_updated` ON `transactions` (`merchant_id`,`status`,`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `transactions_reconcile` ON `transactions` (`merchant_id`,(CASE WHEN "reconciled_at" > "updated_at" THEN "reconciled_at" ELSE "updated_at" END),`id`) WHERE "transactions"."status" IN ('waiting', 'pending', 'authorized', 'pending-capture', 'in-review', 'chargeback-initiated', 'retrieval-request', 'fraud-notification');--> statement-breakpoint
CREATE INDEX `transactions_status_updated` ON `transactions` (`status`,`updated_at`);--> statement-breakpoint
CREATE INDEX `transactions_merchant_payment_type_updated` ON `transactions` (`merchant_id`,`payment_type`,`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `transactions_merchant_created` ON `transactions` (`merchant_id`,julianday("created_at"),`id`);--> statement-breakpoint
CREATE TRIGGER `move_fence_transactions_insert` BEFORE INSERT ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_transactions_insert` AFTER INSERT ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'transactions', json_array(NEW.merchant_id, NEW.id)); END;--> statement-breakpoint
CREATE TRIGGER `move_fence_transactions_update` BEFORE UPDATE ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_transactions_update` AFTER UPDATE ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'transactions', json_array(NEW.merchant_id, NEW.id)); END;--> statement-breakpoint
CREATE TRIGGER `move_fence_transactions_delete` BEFORE DELETE ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_transactions_delete` AFTER DELETE ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'transactions', json_array(OLD.merchant_id, OLD.id)); END;--> statement-breakpoint
CREATE TABLE `__new_operations` (
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
) WITHOUT ROWID;--> statement-breakpoint
INSERT INTO `__new_operations` (`merchant_id`, `id`, `transaction_id`, `type`, `amount`, `currency`, `is_attempt`, `has_failed`, `is_accountable`, `gateway_operation_id`, `error_code`, `error_message`, `payment_type`, `metadata`, `created_at`) SELECT `merchant_id`, `id`, `transaction_id`, `type`, `amount`, `currency`, `is_attempt`, `has_failed`, `is_accountable`, `gateway_operation_id`, `error_code`, `error_message`, `payment_type`, `metadata`, `created_at` FROM `operations`;--> statement-breakpoint
DROP TABLE `operations`;--> statement-breakpoint
ALTER TABLE `__new_operations` RENAME TO `operations`;--> statement-breakpoint
CREATE INDEX `operations_transaction` ON `operations` (`merchant_id`,`transaction_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TRIGGER `move_fence_operations_insert` BEFORE INSERT ON `operations`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_operations_insert` AFTER INSERT ON `operations`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'operations', json_array(NEW.merchant_id, NEW.id)); END;--> statement-breakpoint
CREATE TRIGGER `move_fence_operations_update` BEFORE UPDATE ON `operations`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_operations_update` AFTER UPDATE ON `operations`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'operations', json_array(NEW.merchant_id, NEW.id)); END;--> statement-breakpoint
CREATE TRIGGER `move_fence_operations_delete` BEFORE DELETE ON `operations`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_operations_delete` AFTER DELETE ON `operations`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'operations', json_array(OLD.merchant_id, OLD.id)); END;--> statement-breakpoint
CREATE TABLE `__new_transaction_references` (
	`merchant_id` text NOT NULL,
	`reference` text NOT NULL,
	`transaction_id` text NOT NULL,
	PRIMARY KEY(`merchant_id`, `reference`, `transaction_id`)
) WITHOUT ROWID;--> statement-breakpoint
INSERT INTO `__new_transaction_references` (`merchant_id`, `reference`, `transaction_id`) SELECT `merchant_id`, `reference`, `transaction_id` FROM `transaction_references`;--> statement-breakpoint
DROP TABLE `transaction_references`;--> statement-breakpoint
ALTER TABLE `__new_transaction_references` RENAME TO `transaction_references`;--> statement-breakpoint
CREATE INDEX `transaction_references_transaction` ON `transaction_references` (`merchant_id`,`transaction_id`);--> statement-breakpoint
CREATE TRIGGER `move_fence_transaction_references_insert` BEFORE INSERT ON `transaction_references`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_transaction_references_insert` AFTER INSERT ON `transaction_references`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'transaction_references', json_array(NEW.merchant_id, NEW.reference, NEW.transaction_id)); END;--> statement-breakpoint
CREATE TRIGGER `move_fence_transaction_references_update` BEFORE UPDATE ON `transaction_references`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_transaction_references_update` AFTER UPDATE ON `transaction_references`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'transaction_references', json_array(NEW.merchant_id, NEW.reference, NEW.transaction_id)); END;--> statement-breakpoint
CREATE TRIGGER `move_fence_transaction_references_delete` BEFORE DELETE ON `transaction_references`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_transaction_references_delete` AFTER DELETE ON `transaction_references`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'transaction_references', json_array(OLD.merchant_id, OLD.reference, OLD.transaction_id)); END;--> statement-breakpoint
CREATE TABLE `__new_fulfillments` (
	`merchant_id` text NOT NULL,
	`transaction_id` text NOT NULL,
	`message_id` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_error` text,
	`lease_until` text,
	`requested_at` text NOT NULL,
	`delivered_at` text, `failure_acknowledged_at` text,
	PRIMARY KEY(`merchant_id`, `transaction_id`)
) WITHOUT ROWID;--> statement-breakpoint
INSERT INTO `__new_fulfillments` (`merchant_id`, `transaction_id`, `message_id`, `status`, `attempts`, `last_error`, `lease_until`, `requested_at`, `delivered_at`, `failure_acknowledged_at`) SELECT `merchant_id`, `transaction_id`, `message_id`, `status`, `attempts`, `last_error`, `lease_until`, `requested_at`, `delivered_at`, `failure_acknowledged_at` FROM `fulfillments`;--> statement-breakpoint
DROP TABLE `fulfillments`;--> statement-breakpoint
ALTER TABLE `__new_fulfillments` RENAME TO `fulfillments`;--> statement-breakpoint
CREATE INDEX `fulfillments_pending` ON `fulfillments` (`requested_at`) WHERE "fulfillments"."status" = 'pending';--> statement-breakpoint
CREATE INDEX `fulfillments_failed_unacknowledged` ON `fulfillments` (`merchant_id`,`requested_at`) WHERE "fulfillments"."status" = 'failed' AND "fulfillments"."failure_acknowledged_at" IS NULL;--> statement-breakpoint
CREATE TRIGGER `move_fence_fulfillments_insert` BEFORE INSERT ON `fulfillments`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_fulfillments_insert` AFTER INSERT ON `fulfillments`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'fulfillments', json_array(NEW.merchant_id, NEW.transaction_id)); END;--> statement-breakpoint
CREATE TRIGGER `move_fence_fulfillments_update` BEFORE UPDATE ON `fulfillments`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_fulfillments_update` AFTER UPDATE ON `fulfillments`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'fulfillments', json_array(NEW.merchant_id, NEW.transaction_id)); END;--> statement-breakpoint
CREATE TRIGGER `move_fence_fulfillments_delete` BEFORE DELETE ON `fulfillments`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_fulfillments_delete` AFTER DELETE ON `fulfillments`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'fulfillments', json_array(OLD.merchant_id, OLD.transaction_id)); END;
