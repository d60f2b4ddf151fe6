-- Issue 21 item 5: a record's histories in its own row (src/db/operation-history.ts, src/db/status-history.ts): no D1
-- row per operation or status change (each cost its row and its index entry, and retention's delete of both).
-- `operations` stays for one release: the code shipped with this migration never writes it and reads it beside the
-- column (old code may still read it between this migration and the deploy); 0031 drops it.
-- `transaction_status_changes` is folded and emptied here (its rows have no id of their own to read them once beside
-- the column); rows old code writes before the deploy are read beside the column until 0031 drops the table.
ALTER TABLE `transactions` ADD `operation_history` text;--> statement-breakpoint
ALTER TABLE `transactions` ADD `status_history` text;--> statement-breakpoint
-- The rows stored so far, as the writer stores them (null members left out). A merchant fenced or moved away by a move
-- is left alone (its fence triggers would abort the whole migration): its rows are read from the tables until 0031.
UPDATE `transactions` SET `operation_history` = (
  SELECT json_group_array(json_patch('{}', json_object(
    'id', o.id, 'type', o.type, 'amount', o.amount, 'currency', o.currency,
    'is_attempt', json(CASE WHEN o.is_attempt THEN 'true' ELSE 'false' END),
    'has_failed', json(CASE o.has_failed WHEN 1 THEN 'true' WHEN 0 THEN 'false' END),
    'is_accountable', json(CASE o.is_accountable WHEN 1 THEN 'true' WHEN 0 THEN 'false' END),
    'gateway_operation_id', o.gateway_operation_id, 'error_code', o.error_code, 'error_message', o.error_message,
    'payment_type', o.payment_type, 'metadata', json(o.metadata), 'created_at', o.created_at)))
  FROM `operations` AS o WHERE o.merchant_id = `transactions`.merchant_id AND o.transaction_id = `transactions`.id)
WHERE EXISTS (SELECT 1 FROM `operations` AS o WHERE o.merchant_id = `transactions`.merchant_id AND o.transaction_id = `transactions`.id)
  AND NOT EXISTS (SELECT 1 FROM `move_marks` AS k WHERE k.merchant_id = `transactions`.merchant_id AND k.state IN ('fenced', 'moved'));--> statement-breakpoint
UPDATE `transactions` SET `status_history` = (
  SELECT json_group_array(json_patch('{}', json_object('at', h.at, 'from', h.from_status, 'to', h.to_status,
    'event_id', h.event_id, 'event_name', h.event_name, 'read_at', h.read_at)))
  FROM (SELECT * FROM `transaction_status_changes` AS c
    WHERE c.merchant_id = `transactions`.merchant_id AND c.transaction_id = `transactions`.id ORDER BY c.id) AS h)
WHERE EXISTS (SELECT 1 FROM `transaction_status_changes` AS c WHERE c.merchant_id = `transactions`.merchant_id AND c.transaction_id = `transactions`.id)
  AND NOT EXISTS (SELECT 1 FROM `move_marks` AS k WHERE k.merchant_id = `transactions`.merchant_id AND k.state IN ('fenced', 'moved'));--> statement-breakpoint
DELETE FROM `transaction_status_changes` WHERE EXISTS (SELECT 1 FROM `transactions` AS t
  WHERE t.merchant_id = `transaction_status_changes`.merchant_id AND t.id = `transaction_status_changes`.transaction_id
    AND t.status_history IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM `move_marks` AS k WHERE k.merchant_id = `transaction_status_changes`.merchant_id AND k.state IN ('fenced', 'moved'));
