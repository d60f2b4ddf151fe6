-- Issue 21 item 5, the timeline fold for fulfilment: the attempt that delivered a notification is recorded by the
-- outbox row that already records the moment (`delivered_at`, `attempts`): its HTTP status is a column of that row and
-- no `fulfillment_attempts` row is written for it (~0.7 D1 rows a webhook with the archive's delete). Failed attempts
-- keep their rows. Rows delivered before 0028 keep their attempt row and a null status here (src/timeline/timeline.ts).
ALTER TABLE `fulfillments` ADD `delivered_http_status` integer;
