-- Email verification and security notices: a citizen's verified email and language, the
-- single-use links mailed to them, and the outbox. Defaults, so that rows written before, and
-- instances of the previous release that do not name these columns, read as an unverified
-- email and the default language.
ALTER TABLE accounts ADD COLUMN email_verified boolean NOT NULL DEFAULT false;
ALTER TABLE accounts ADD COLUMN lang text NOT NULL DEFAULT '';

-- Single-use secrets mailed to a citizen (a link that verifies an email address, a "this was
-- not me" link), keyed by the token's hash.
CREATE TABLE tickets (
	hash       bytea PRIMARY KEY,
	kind       text NOT NULL,
	account_id text COLLATE "C" NOT NULL,
	email      text NOT NULL,
	device_id  text COLLATE "C" NOT NULL,
	created_ns bigint NOT NULL,
	expires_ns bigint NOT NULL,
	used_ns    bigint
);
CREATE INDEX tickets_by_expiry ON tickets (expires_ns);

-- The outbox. key is NULL for a mail without one, which UNIQUE leaves out. params is the
-- template's JSON as the caller gave it, kept byte for byte: jsonb would reorder it.
CREATE TABLE mails (
	id          text COLLATE "C" PRIMARY KEY,
	key         text COLLATE "C" UNIQUE,
	account_id  text COLLATE "C" NOT NULL,
	to_address  text NOT NULL,
	lang        text NOT NULL,
	notice      text NOT NULL,
	params      bytea,
	created_ns  bigint NOT NULL,
	next_ns     bigint NOT NULL,
	lease_ns    bigint NOT NULL,
	attempts    bigint NOT NULL,
	sent_ns     bigint,
	failed_ns   bigint,
	last_error  text NOT NULL
);
-- The pending mails alone, in the order DueMails takes them: the sent ones, millions in a
-- national outbox, are never read to find the few due.
CREATE INDEX mails_due ON mails (next_ns, id) WHERE sent_ns IS NULL AND failed_ns IS NULL;
-- An account's mails, oldest first.
CREATE INDEX mails_by_account ON mails (account_id, created_ns, id);
-- For GarbageCollect, which deletes mails after the audit retention.
CREATE INDEX mails_by_creation ON mails (created_ns);

-- Every account's devices by expiry, which the expiry reminders page through.
CREATE INDEX devices_by_expiry ON devices (expires_ns, id);
