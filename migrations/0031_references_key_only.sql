-- Issue 21 item 5: a write removes the references it replaces by their own key, read from the record before its upsert
-- (src/transactions/references.ts `removeReplacedReferences`), so the index by transaction is no longer read: one D1 row
-- fewer for every reference written, and its bytes.
DROP INDEX `transaction_references_transaction`;
