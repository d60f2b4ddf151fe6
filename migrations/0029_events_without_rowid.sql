-- Issue 21 item 5: the inbox WITHOUT ROWID (0026 did it for operations, records, references and the outbox). Keyed
-- (id, merchant_id), not (merchant_id, id): a key led by merchant_id is a covering "index" of the merchant's whole inbox,
-- which SQLite's planner (no ANALYZE statistics) took over `events_transaction`, `events_pending` and the prune's walk
-- (the console's and retention's query-plan tests). Led by the event id, the key serves only lookups of one event, and
-- each insert and archive delete writes one entry fewer. The move triggers of 0022 are re-created with the key in the
-- new order, and change-log entries a running move already holds for the inbox are turned to it (src/moves/tables.ts).
CREATE TABLE `__new_events` (
	`merchant_id` text NOT NULL,
	`id` text NOT NULL,
	`name` text,
	`transaction_id` text,
	`fired_at` text,
	`outcome` text NOT NULL,
	`deliveries` integer DEFAULT 1 NOT NULL,
	`first_received_at` text NOT NULL,
	`processed_at` text,
	`detail` text, `first_delivery_id` text, `fetch_back_at` text, `fetch_back_outcome` text, `fetch_back_via` text, `fetch_back_api_calls` integer, `fetch_back_pace_wait_ms` integer, `fetch_back_detail` text,
	PRIMARY KEY(`id`, `merchant_id`)
) WITHOUT ROWID;--> statement-breakpoint
INSERT INTO `__new_events` (`merchant_id`, `id`, `name`, `transaction_id`, `fired_at`, `outcome`, `deliveries`, `first_received_at`, `processed_at`, `detail`, `first_delivery_id`, `fetch_back_at`, `fetch_back_outcome`, `fetch_back_via`, `fetch_back_api_calls`, `fetch_back_pace_wait_ms`, `fetch_back_detail`) SELECT `merchant_id`, `id`, `name`, `transaction_id`, `fired_at`, `outcome`, `deliveries`, `first_received_at`, `processed_at`, `detail`, `first_delivery_id`, `fetch_back_at`, `fetch_back_outcome`, `fetch_back_via`, `fetch_back_api_calls`, `fetch_back_pace_wait_ms`, `fetch_back_detail` FROM `events`;--> statement-breakpoint
DROP TABLE `events`;--> statement-breakpoint
ALTER TABLE `__new_events` RENAME TO `events`;--> statement-breakpoint
CREATE INDEX `events_transaction` ON `events` (`merchant_id`,`transaction_id`,`fired_at`,`id`);--> statement-breakpoint
CREATE INDEX `events_rejected_processed` ON `events` (`merchant_id`,`processed_at`) WHERE "events"."outcome" = 'rejected';--> statement-breakpoint
CREATE INDEX `events_pending` ON `events` (`merchant_id`) WHERE "events"."outcome" = 'pending';--> statement-breakpoint
CREATE INDEX `events_first_delivery` ON `events` (`merchant_id`,`first_received_at`) WHERE "events"."first_delivery_id" IS NOT NULL;--> statement-breakpoint
CREATE TRIGGER `move_fence_events_insert` BEFORE INSERT ON `events`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_events_insert` AFTER INSERT ON `events`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'events', json_array(NEW.id, NEW.merchant_id)); END;--> statement-breakpoint
CREATE TRIGGER `move_fence_events_update` BEFORE UPDATE ON `events`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state IN ('fenced', 'moved'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_events_update` AFTER UPDATE ON `events`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = NEW.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (NEW.merchant_id, 'events', json_array(NEW.id, NEW.merchant_id)); END;--> statement-breakpoint
CREATE TRIGGER `move_fence_events_delete` BEFORE DELETE ON `events`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state IN ('fenced'))
BEGIN SELECT RAISE(ABORT, 'merchant_fenced'); END;--> statement-breakpoint
CREATE TRIGGER `move_track_events_delete` AFTER DELETE ON `events`
WHEN EXISTS (SELECT 1 FROM move_marks WHERE merchant_id = OLD.merchant_id AND state = 'tracking')
BEGIN INSERT INTO move_changes (merchant_id, tbl, key) VALUES (OLD.merchant_id, 'events', json_array(OLD.id, OLD.merchant_id)); END;--> statement-breakpoint
UPDATE `move_changes` SET `key` = json_array(`key` ->> '$[1]', `key` ->> '$[0]') WHERE `tbl` = 'events';
