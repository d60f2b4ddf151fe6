-- Issue 21 item 5, the timeline fold (src/transactions/timeline-record.ts): the inbox row records its event's first
-- delivery and the fetch-back that settled it, so a webhook writes no webhook_deliveries / fetch_backs rows of its own;
-- those tables keep later deliveries (duplicates) and fetch-backs that settled nothing (retried, asked again later).
-- Rows written before this migration stay where they are: the timeline, the pipeline and the archive read both.
ALTER TABLE `events` ADD `first_delivery_id` text;--> statement-breakpoint
ALTER TABLE `events` ADD `fetch_back_at` text;--> statement-breakpoint
ALTER TABLE `events` ADD `fetch_back_outcome` text;--> statement-breakpoint
ALTER TABLE `events` ADD `fetch_back_via` text;--> statement-breakpoint
ALTER TABLE `events` ADD `fetch_back_api_calls` integer;--> statement-breakpoint
ALTER TABLE `events` ADD `fetch_back_pace_wait_ms` integer;--> statement-breakpoint
ALTER TABLE `events` ADD `fetch_back_detail` text;--> statement-breakpoint
-- The pipeline's deliveries per minute (GET /v1/pipeline): the first deliveries now live in the inbox.
CREATE INDEX `events_first_delivery` ON `events` (`merchant_id`,`first_received_at`) WHERE "events"."first_delivery_id" IS NOT NULL;
