-- Phone notifications (issue 15): a device's Web Push subscription, one per device. Defaults,
-- so that rows written before, and instances of the previous release that do not name these
-- columns, read as no subscription.
ALTER TABLE devices ADD COLUMN push_endpoint text NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN push_p256dh text NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN push_auth text NOT NULL DEFAULT '';
