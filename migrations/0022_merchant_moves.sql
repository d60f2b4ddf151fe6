-- Moving a merchant between shards online (issue 21 item 3, src/moves/). The job is on DB; every shard carries
-- the marks, the change log and the copy's progress, and each merchant-scoped table gets two kinds of trigger:
-- a fence (a write of a merchant whose mark is `fenced`, or `moved` off this shard, aborts with `merchant_fenced`) and
-- a change log (while the mark is `tracking`, each written row's key is logged, so the switch re-copies only those).
CREATE TABLE `merchant_moves` (
	`id` text PRIMARY KEY NOT NULL,
	`merchant_id` text NOT NULL,
	`from_shard` integer NOT NULL,
	`to_shard` integer NOT NULL,
	`status` text NOT NULL,
	`step` integer DEFAULT 0 NOT NULL,
	`rows_copied` integer DEFAULT 0 NOT NULL,
	`started_at` text NOT NULL,
	`fence_started_at` text,
	`fence_ended_at` text,
	`switched_at` text,
	`finished_at` text,
	`error` text,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `merchant_moves_one_running` ON `merchant_moves` (`merchant_id`) WHERE "merchant_moves"."status" NOT IN ('completed', 'failed');
--> statement-breakpoint
CREATE TABLE `move_marks` (
	`merchant_id` text PRIMARY KEY NOT NULL,
	`move_id` text NOT NULL,
	`state` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `move_changes` (
	`seq` integer PRIMARY KEY NOT NULL,
	`merchant_id` text NOT NULL,
	`tbl` text NOT NULL,
	`key` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `move_changes_merchant` ON `move_changes` (`merchant_id`,`seq`);
--> statement-breakpoint
CREATE TABLE `move_progress` (
	`move_id` text NOT NULL,
	`tbl` text NOT NULL,
	`cursor` text,
	`rows` integer DEFAULT 0 NOT NULL,
	`done` integer DEFAULT 0 NOT NULL,
	`token` text,
	PRIMARY KEY(`move_id`, `tbl`)
);
--> statement-breakpoint
CREATE TABLE `move_row_map` (
	`move_id` text NOT NULL,
	`tbl` text NOT NULL,
	`source_id` integer NOT NULL,
	`target_id` integer NOT NULL,
	PRIMARY KEY(`move_id`, `tbl`, `source_id`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TRIGGER `move_fence_merchants_insert` BEFORE INSERT ON `merchants`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_merchants_insert` AFTER INSERT ON `merchants`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.id, 'merchants', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_merchants_update` BEFORE UPDATE ON `merchants`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_merchants_update` AFTER UPDATE ON `merchants`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.id, 'merchants', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_merchants_delete` BEFORE DELETE ON `merchants`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_merchants_delete` AFTER DELETE ON `merchants`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.id, 'merchants', json_array(OLD.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_api_keys_insert` BEFORE INSERT ON `api_keys`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_api_keys_insert` AFTER INSERT ON `api_keys`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'api_keys', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_api_keys_update` BEFORE UPDATE ON `api_keys`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_api_keys_update` AFTER UPDATE ON `api_keys`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'api_keys', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_api_keys_delete` BEFORE DELETE ON `api_keys`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_api_keys_delete` AFTER DELETE ON `api_keys`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'api_keys', json_array(OLD.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_event_log_cursors_insert` BEFORE INSERT ON `event_log_cursors`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_event_log_cursors_insert` AFTER INSERT ON `event_log_cursors`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'event_log_cursors', json_array(NEW.merchant_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_event_log_cursors_update` BEFORE UPDATE ON `event_log_cursors`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_event_log_cursors_update` AFTER UPDATE ON `event_log_cursors`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'event_log_cursors', json_array(NEW.merchant_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_event_log_cursors_delete` BEFORE DELETE ON `event_log_cursors`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_event_log_cursors_delete` AFTER DELETE ON `event_log_cursors`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'event_log_cursors', json_array(OLD.merchant_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_retention_cursors_insert` BEFORE INSERT ON `retention_cursors`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_retention_cursors_insert` AFTER INSERT ON `retention_cursors`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'retention_cursors', json_array(NEW.merchant_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_retention_cursors_update` BEFORE UPDATE ON `retention_cursors`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_retention_cursors_update` AFTER UPDATE ON `retention_cursors`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'retention_cursors', json_array(NEW.merchant_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_retention_cursors_delete` BEFORE DELETE ON `retention_cursors`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_retention_cursors_delete` AFTER DELETE ON `retention_cursors`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'retention_cursors', json_array(OLD.merchant_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_endpoints_insert` BEFORE INSERT ON `endpoints`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_endpoints_insert` AFTER INSERT ON `endpoints`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'endpoints', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_endpoints_update` BEFORE UPDATE ON `endpoints`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_endpoints_update` AFTER UPDATE ON `endpoints`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'endpoints', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_endpoints_delete` BEFORE DELETE ON `endpoints`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_endpoints_delete` AFTER DELETE ON `endpoints`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'endpoints', json_array(OLD.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_transactions_insert` BEFORE INSERT ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_transactions_insert` AFTER INSERT ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'transactions', json_array(NEW.merchant_id, NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_transactions_update` BEFORE UPDATE ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_transactions_update` AFTER UPDATE ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'transactions', json_array(NEW.merchant_id, NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_transactions_delete` BEFORE DELETE ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_transactions_delete` AFTER DELETE ON `transactions`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'transactions', json_array(OLD.merchant_id, OLD.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_operations_insert` BEFORE INSERT ON `operations`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_operations_insert` AFTER INSERT ON `operations`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'operations', json_array(NEW.merchant_id, NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_operations_update` BEFORE UPDATE ON `operations`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_operations_update` AFTER UPDATE ON `operations`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'operations', json_array(NEW.merchant_id, NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_operations_delete` BEFORE DELETE ON `operations`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_operations_delete` AFTER DELETE ON `operations`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'operations', json_array(OLD.merchant_id, OLD.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_events_insert` BEFORE INSERT ON `events`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_events_insert` AFTER INSERT ON `events`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'events', json_array(NEW.merchant_id, NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_events_update` BEFORE UPDATE ON `events`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_events_update` AFTER UPDATE ON `events`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'events', json_array(NEW.merchant_id, NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_events_delete` BEFORE DELETE ON `events`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_events_delete` AFTER DELETE ON `events`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'events', json_array(OLD.merchant_id, OLD.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_webhook_deliveries_insert` BEFORE INSERT ON `webhook_deliveries`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_webhook_deliveries_insert` AFTER INSERT ON `webhook_deliveries`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'webhook_deliveries', json_array(NEW.merchant_id, NEW.event_id, NEW.delivery_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_webhook_deliveries_update` BEFORE UPDATE ON `webhook_deliveries`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_webhook_deliveries_update` AFTER UPDATE ON `webhook_deliveries`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'webhook_deliveries', json_array(NEW.merchant_id, NEW.event_id, NEW.delivery_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_webhook_deliveries_delete` BEFORE DELETE ON `webhook_deliveries`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_webhook_deliveries_delete` AFTER DELETE ON `webhook_deliveries`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'webhook_deliveries', json_array(OLD.merchant_id, OLD.event_id, OLD.delivery_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_transaction_references_insert` BEFORE INSERT ON `transaction_references`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_transaction_references_insert` AFTER INSERT ON `transaction_references`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'transaction_references', json_array(NEW.merchant_id, NEW.reference, NEW.transaction_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_transaction_references_update` BEFORE UPDATE ON `transaction_references`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_transaction_references_update` AFTER UPDATE ON `transaction_references`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'transaction_references', json_array(NEW.merchant_id, NEW.reference, NEW.transaction_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_transaction_references_delete` BEFORE DELETE ON `transaction_references`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_transaction_references_delete` AFTER DELETE ON `transaction_references`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'transaction_references', json_array(OLD.merchant_id, OLD.reference, OLD.transaction_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_fulfillments_insert` BEFORE INSERT ON `fulfillments`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_fulfillments_insert` AFTER INSERT ON `fulfillments`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'fulfillments', json_array(NEW.merchant_id, NEW.transaction_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_fulfillments_update` BEFORE UPDATE ON `fulfillments`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_fulfillments_update` AFTER UPDATE ON `fulfillments`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'fulfillments', json_array(NEW.merchant_id, NEW.transaction_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_fulfillments_delete` BEFORE DELETE ON `fulfillments`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_fulfillments_delete` AFTER DELETE ON `fulfillments`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'fulfillments', json_array(OLD.merchant_id, OLD.transaction_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_transaction_streams_insert` BEFORE INSERT ON `transaction_streams`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_transaction_streams_insert` AFTER INSERT ON `transaction_streams`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'transaction_streams', json_array(NEW.merchant_id, NEW.transaction_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_transaction_streams_update` BEFORE UPDATE ON `transaction_streams`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_transaction_streams_update` AFTER UPDATE ON `transaction_streams`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'transaction_streams', json_array(NEW.merchant_id, NEW.transaction_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_transaction_streams_delete` BEFORE DELETE ON `transaction_streams`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_transaction_streams_delete` AFTER DELETE ON `transaction_streams`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'transaction_streams', json_array(OLD.merchant_id, OLD.transaction_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_transaction_changes_insert` BEFORE INSERT ON `transaction_changes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_transaction_changes_insert` AFTER INSERT ON `transaction_changes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'transaction_changes', json_array(NEW.merchant_id, NEW.transaction_id, NEW.sequence)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_transaction_changes_update` BEFORE UPDATE ON `transaction_changes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_transaction_changes_update` AFTER UPDATE ON `transaction_changes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'transaction_changes', json_array(NEW.merchant_id, NEW.transaction_id, NEW.sequence)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_transaction_changes_delete` BEFORE DELETE ON `transaction_changes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_transaction_changes_delete` AFTER DELETE ON `transaction_changes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'transaction_changes', json_array(OLD.merchant_id, OLD.transaction_id, OLD.sequence)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_endpoint_messages_insert` BEFORE INSERT ON `endpoint_messages`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_endpoint_messages_insert` AFTER INSERT ON `endpoint_messages`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'endpoint_messages', json_array(NEW.seq)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_endpoint_messages_update` BEFORE UPDATE ON `endpoint_messages`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_endpoint_messages_update` AFTER UPDATE ON `endpoint_messages`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'endpoint_messages', json_array(NEW.seq)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_endpoint_messages_delete` BEFORE DELETE ON `endpoint_messages`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_endpoint_messages_delete` AFTER DELETE ON `endpoint_messages`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'endpoint_messages', json_array(OLD.seq)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_endpoint_replays_insert` BEFORE INSERT ON `endpoint_replays`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_endpoint_replays_insert` AFTER INSERT ON `endpoint_replays`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'endpoint_replays', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_endpoint_replays_update` BEFORE UPDATE ON `endpoint_replays`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_endpoint_replays_update` AFTER UPDATE ON `endpoint_replays`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'endpoint_replays', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_endpoint_replays_delete` BEFORE DELETE ON `endpoint_replays`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_endpoint_replays_delete` AFTER DELETE ON `endpoint_replays`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'endpoint_replays', json_array(OLD.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_dead_letters_insert` BEFORE INSERT ON `dead_letters`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_dead_letters_insert` AFTER INSERT ON `dead_letters`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'dead_letters', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_dead_letters_update` BEFORE UPDATE ON `dead_letters`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_dead_letters_update` AFTER UPDATE ON `dead_letters`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'dead_letters', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_dead_letters_delete` BEFORE DELETE ON `dead_letters`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_dead_letters_delete` AFTER DELETE ON `dead_letters`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'dead_letters', json_array(OLD.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_batches_insert` BEFORE INSERT ON `batches`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_batches_insert` AFTER INSERT ON `batches`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'batches', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_batches_update` BEFORE UPDATE ON `batches`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_batches_update` AFTER UPDATE ON `batches`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'batches', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_batches_delete` BEFORE DELETE ON `batches`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_batches_delete` AFTER DELETE ON `batches`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'batches', json_array(OLD.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_batch_units_insert` BEFORE INSERT ON `batch_units`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = (SELECT b.merchant_id FROM batches AS b WHERE b.id = NEW.batch_id) AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_batch_units_insert` AFTER INSERT ON `batch_units`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = (SELECT b.merchant_id FROM batches AS b WHERE b.id = NEW.batch_id) AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES ((SELECT b.merchant_id FROM batches AS b WHERE b.id = NEW.batch_id), 'batch_units', json_array(NEW.unit_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_batch_units_update` BEFORE UPDATE ON `batch_units`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = (SELECT b.merchant_id FROM batches AS b WHERE b.id = NEW.batch_id) AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_batch_units_update` AFTER UPDATE ON `batch_units`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = (SELECT b.merchant_id FROM batches AS b WHERE b.id = NEW.batch_id) AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES ((SELECT b.merchant_id FROM batches AS b WHERE b.id = NEW.batch_id), 'batch_units', json_array(NEW.unit_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_batch_units_delete` BEFORE DELETE ON `batch_units`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = (SELECT b.merchant_id FROM batches AS b WHERE b.id = OLD.batch_id) AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_batch_units_delete` AFTER DELETE ON `batch_units`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = (SELECT b.merchant_id FROM batches AS b WHERE b.id = OLD.batch_id) AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES ((SELECT b.merchant_id FROM batches AS b WHERE b.id = OLD.batch_id), 'batch_units', json_array(OLD.unit_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_export_leases_insert` BEFORE INSERT ON `export_leases`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_export_leases_insert` AFTER INSERT ON `export_leases`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'export_leases', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_export_leases_update` BEFORE UPDATE ON `export_leases`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_export_leases_update` AFTER UPDATE ON `export_leases`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'export_leases', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_export_leases_delete` BEFORE DELETE ON `export_leases`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_export_leases_delete` AFTER DELETE ON `export_leases`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'export_leases', json_array(OLD.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_alerts_insert` BEFORE INSERT ON `alerts`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_alerts_insert` AFTER INSERT ON `alerts`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'alerts', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_alerts_update` BEFORE UPDATE ON `alerts`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_alerts_update` AFTER UPDATE ON `alerts`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'alerts', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_alerts_delete` BEFORE DELETE ON `alerts`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_alerts_delete` AFTER DELETE ON `alerts`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'alerts', json_array(OLD.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_parked_deliveries_insert` BEFORE INSERT ON `parked_deliveries`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_parked_deliveries_insert` AFTER INSERT ON `parked_deliveries`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'parked_deliveries', json_array(NEW.merchant_id, NEW.delivery_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_parked_deliveries_update` BEFORE UPDATE ON `parked_deliveries`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_parked_deliveries_update` AFTER UPDATE ON `parked_deliveries`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'parked_deliveries', json_array(NEW.merchant_id, NEW.delivery_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_parked_deliveries_delete` BEFORE DELETE ON `parked_deliveries`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_parked_deliveries_delete` AFTER DELETE ON `parked_deliveries`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'parked_deliveries', json_array(OLD.merchant_id, OLD.delivery_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_parked_wakeups_insert` BEFORE INSERT ON `parked_wakeups`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_parked_wakeups_insert` AFTER INSERT ON `parked_wakeups`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'parked_wakeups', json_array(NEW.merchant_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_parked_wakeups_update` BEFORE UPDATE ON `parked_wakeups`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_parked_wakeups_update` AFTER UPDATE ON `parked_wakeups`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'parked_wakeups', json_array(NEW.merchant_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_parked_wakeups_delete` BEFORE DELETE ON `parked_wakeups`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_parked_wakeups_delete` AFTER DELETE ON `parked_wakeups`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'parked_wakeups', json_array(OLD.merchant_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_fetch_backs_insert` BEFORE INSERT ON `fetch_backs`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_fetch_backs_insert` AFTER INSERT ON `fetch_backs`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'fetch_backs', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_fetch_backs_update` BEFORE UPDATE ON `fetch_backs`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_fetch_backs_update` AFTER UPDATE ON `fetch_backs`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'fetch_backs', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_fetch_backs_delete` BEFORE DELETE ON `fetch_backs`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_fetch_backs_delete` AFTER DELETE ON `fetch_backs`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'fetch_backs', json_array(OLD.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_transaction_status_changes_insert` BEFORE INSERT ON `transaction_status_changes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_transaction_status_changes_insert` AFTER INSERT ON `transaction_status_changes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'transaction_status_changes', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_transaction_status_changes_update` BEFORE UPDATE ON `transaction_status_changes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_transaction_status_changes_update` AFTER UPDATE ON `transaction_status_changes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'transaction_status_changes', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_transaction_status_changes_delete` BEFORE DELETE ON `transaction_status_changes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_transaction_status_changes_delete` AFTER DELETE ON `transaction_status_changes`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'transaction_status_changes', json_array(OLD.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_fulfillment_attempts_insert` BEFORE INSERT ON `fulfillment_attempts`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_fulfillment_attempts_insert` AFTER INSERT ON `fulfillment_attempts`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'fulfillment_attempts', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_fulfillment_attempts_update` BEFORE UPDATE ON `fulfillment_attempts`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_fulfillment_attempts_update` AFTER UPDATE ON `fulfillment_attempts`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'fulfillment_attempts', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_fulfillment_attempts_delete` BEFORE DELETE ON `fulfillment_attempts`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_fulfillment_attempts_delete` AFTER DELETE ON `fulfillment_attempts`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'fulfillment_attempts', json_array(OLD.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_archive_objects_insert` BEFORE INSERT ON `archive_objects`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_archive_objects_insert` AFTER INSERT ON `archive_objects`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'archive_objects', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_archive_objects_update` BEFORE UPDATE ON `archive_objects`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_archive_objects_update` AFTER UPDATE ON `archive_objects`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'archive_objects', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_archive_objects_delete` BEFORE DELETE ON `archive_objects`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_archive_objects_delete` AFTER DELETE ON `archive_objects`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'archive_objects', json_array(OLD.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_archived_histories_insert` BEFORE INSERT ON `archived_histories`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_archived_histories_insert` AFTER INSERT ON `archived_histories`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'archived_histories', json_array(NEW.merchant_id, NEW.transaction_id, NEW.archive_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_archived_histories_update` BEFORE UPDATE ON `archived_histories`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_archived_histories_update` AFTER UPDATE ON `archived_histories`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'archived_histories', json_array(NEW.merchant_id, NEW.transaction_id, NEW.archive_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_archived_histories_delete` BEFORE DELETE ON `archived_histories`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_archived_histories_delete` AFTER DELETE ON `archived_histories`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'archived_histories', json_array(OLD.merchant_id, OLD.transaction_id, OLD.archive_id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_archive_pages_insert` BEFORE INSERT ON `archive_pages`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.scope AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_archive_pages_insert` AFTER INSERT ON `archive_pages`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.scope AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.scope, 'archive_pages', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_archive_pages_update` BEFORE UPDATE ON `archive_pages`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.scope AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_archive_pages_update` AFTER UPDATE ON `archive_pages`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.scope AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.scope, 'archive_pages', json_array(NEW.id)); END;
--> statement-breakpoint
CREATE TRIGGER `move_fence_archive_pages_delete` BEFORE DELETE ON `archive_pages`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.scope AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;
--> statement-breakpoint
CREATE TRIGGER `move_track_archive_pages_delete` AFTER DELETE ON `archive_pages`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.scope AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.scope, 'archive_pages', json_array(OLD.id)); END;
