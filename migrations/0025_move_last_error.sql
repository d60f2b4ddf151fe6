-- A move's last failed step (issue 21, src/moves/): what the cron's horizon names when it gives a stuck move up.
ALTER TABLE `merchant_moves` ADD `last_error` text;
