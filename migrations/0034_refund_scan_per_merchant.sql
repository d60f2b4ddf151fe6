-- placeholder
DROP INDEX IF EXISTS `transactions_status_updated`;
