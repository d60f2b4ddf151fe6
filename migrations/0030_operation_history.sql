-- Issue 21 item 5: the operation history in the record's row (src/db/operation-history.ts): no D1 row per operation
-- (each cost its row and its `operations_transaction` entry, and retention's delete of both). The table stays for one
-- release: the code shipped with this migration never writes it and reads it beside the column; 0031 drops it.
ALTER TABLE `transactions` ADD `operation_history` text;--> statement-breakpoint
-- The rows stored so far, as the writer stores them (null members left out). A merchant fenced or moved away by a move
-- is left alone (its fence triggers would abort the whole migration): its rows are read from the table until 0031.
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
  AND NOT EXISTS (SELECT 1 FROM `move_marks` AS k WHERE k.merchant_id = `transactions`.merchant_id AND k.state IN ('fenced', 'moved'));
