"""The collect stage's actions: posting and reversing payments, receipts, failed attempts."""
