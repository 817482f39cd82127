-- mcert's records: one table per record type, each field a column of its own, so that the
-- schema is the stored format (versioned by these numbered files) and an operator can read
-- and query every record with plain SQL.
--
-- Times are bigint nanoseconds since the Unix epoch, in columns named *_ns: timestamptz keeps
-- microseconds only, and a record must come back exactly as it was stored. Go's zero time is
-- the smallest bigint (see times.go). In psql: to_timestamp(expires_ns / 1e9).
--
-- Text keys are COLLATE "C", so that lists sort by bytes, as in bbolt, whatever the database's
-- locale. A unique key a record may leave unset (a device's token, a login's code) is NULL
-- then, which UNIQUE leaves out.
--
-- There are no foreign keys between record types: the store, like bbolt, keeps what it is
-- given, and the domain decides what refers to what. login_tokens is the one exception: it is
-- the logins' index, not a record type.

CREATE TABLE challenges (
	hash       bytea PRIMARY KEY,
	created_ns bigint NOT NULL,
	expires_ns bigint NOT NULL,
	used_ns    bigint
);
CREATE INDEX challenges_by_expiry ON challenges (expires_ns);

CREATE TABLE sessions (
	hash       bytea PRIMARY KEY,
	citizen_id text NOT NULL,
	name       text NOT NULL,
	created_ns bigint NOT NULL,
	expires_ns bigint NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_ns);

CREATE TABLE accounts (
	id          text COLLATE "C" PRIMARY KEY,
	citizen_id  text COLLATE "C" NOT NULL UNIQUE,
	name        text NOT NULL,
	email       text NOT NULL,
	phone       text NOT NULL,
	webauthn_id bytea,
	status      text NOT NULL,
	created_ns  bigint NOT NULL,
	updated_ns  bigint NOT NULL
);

CREATE TABLE bindings (
	id               text COLLATE "C" PRIMARY KEY,
	token_hash       bytea NOT NULL UNIQUE,
	account_id       text COLLATE "C" NOT NULL,
	status           text NOT NULL,
	created_ns       bigint NOT NULL,
	expires_ns       bigint NOT NULL,
	sealed_qr        bytea,
	device_name      text NOT NULL,
	webauthn_session bytea,
	device_id        text COLLATE "C" NOT NULL,
	reason           text NOT NULL
);
CREATE INDEX bindings_by_expiry ON bindings (expires_ns);

CREATE TABLE devices (
	id               text COLLATE "C" PRIMARY KEY,
	account_id       text COLLATE "C" NOT NULL,
	name             text NOT NULL,
	credential_id    bytea NOT NULL UNIQUE,
	public_key       bytea,
	attestation_type text NOT NULL,
	attestation_fmt  text NOT NULL,
	aaguid           bytea,
	sign_count       bigint NOT NULL, -- a uint32
	transports       text[],
	backup_eligible  boolean NOT NULL,
	backup_state     boolean NOT NULL,
	token_hash       bytea UNIQUE,
	status           text NOT NULL,
	created_ns       bigint NOT NULL,
	expires_ns       bigint NOT NULL,
	last_used_ns     bigint,
	revoked_ns       bigint,
	clone_warning_ns bigint
);
-- An account's devices, oldest first.
CREATE INDEX devices_by_account ON devices (account_id, created_ns, id);

CREATE TABLE clients (
	id                        text COLLATE "C" PRIMARY KEY,
	secret_hash               bytea,
	name                      text NOT NULL,
	redirect_uris             text[],
	post_logout_redirect_uris text[],
	citizen_id                boolean NOT NULL,
	ciba                      boolean NOT NULL,
	id_token_alg              text NOT NULL,
	disabled                  boolean NOT NULL,
	created_ns                bigint NOT NULL
);

CREATE TABLE logins (
	hash             bytea PRIMARY KEY,
	kind             text NOT NULL,
	client_id        text COLLATE "C" NOT NULL,
	client_name      text NOT NULL,
	status           text NOT NULL,
	created_ns       bigint NOT NULL,
	expires_ns       bigint NOT NULL,
	token_expires_ns bigint NOT NULL,
	token_serial     bigint NOT NULL,
	-- The record's own list, in its order; login_tokens indexes it.
	token_hashes     bytea[],
	code             text NOT NULL,
	binding_message  text NOT NULL,
	request          bytea,
	code_hash        bytea UNIQUE,
	webauthn_session bytea,
	last_polled_ns   bigint,
	account_id       text COLLATE "C" NOT NULL,
	device_id        text COLLATE "C" NOT NULL,
	auth_time_ns     bigint,
	browser_hash     bytea,
	browser          text NOT NULL,
	reason           text NOT NULL,
	poll_interval_ns bigint NOT NULL,
	-- storage.Login.Waiting, with an account: what a phone's inbox lists. The store sets it
	-- from the record, so that Waiting's rule is written once, in Go.
	waiting          boolean NOT NULL
);
CREATE INDEX logins_by_expiry ON logins (expires_ns);
CREATE INDEX logins_waiting ON logins (account_id, created_ns, hash) WHERE waiting;

-- Each token hash of a login, unique across logins.
CREATE TABLE login_tokens (
	hash  bytea PRIMARY KEY,
	login bytea NOT NULL REFERENCES logins (hash) ON DELETE CASCADE
);
CREATE INDEX login_tokens_by_login ON login_tokens (login);

CREATE TABLE tokens (
	id           text COLLATE "C" PRIMARY KEY,
	client_id    text COLLATE "C" NOT NULL,
	account_id   text COLLATE "C" NOT NULL,
	scopes       text[],
	auth_time_ns bigint NOT NULL,
	created_ns   bigint NOT NULL,
	expires_ns   bigint NOT NULL
);
CREATE INDEX tokens_by_grant ON tokens (account_id, client_id);
CREATE INDEX tokens_by_client ON tokens (client_id);
CREATE INDEX tokens_by_expiry ON tokens (expires_ns);

CREATE TABLE secrets (
	name  text COLLATE "C" PRIMARY KEY,
	value bytea
);

CREATE TABLE signing_keys (
	id          text COLLATE "C" PRIMARY KEY,
	algorithm   text NOT NULL,
	private_key bytea,
	created_ns  bigint NOT NULL,
	retire_ns   bigint
);
CREATE INDEX signing_keys_by_retirement ON signing_keys (retire_ns) WHERE retire_ns IS NOT NULL;

-- The audit log. The id is the order of appending, across every instance sharing the database.
CREATE TABLE events (
	id         bigserial PRIMARY KEY,
	time_ns    bigint NOT NULL,
	account_id text COLLATE "C" NOT NULL,
	type       text NOT NULL,
	outcome    text NOT NULL,
	reason     text NOT NULL,
	client_id  text COLLATE "C" NOT NULL,
	device_id  text COLLATE "C" NOT NULL,
	actor      text NOT NULL,
	ip         text NOT NULL
);
CREATE INDEX events_by_account ON events (account_id, id) WHERE account_id <> '';
CREATE INDEX events_by_time ON events (time_ns);

-- One counter per window and key. Keys are bytea: they are any Go string, which text (no NUL,
-- valid UTF-8 only) is not. Windows that start first come first, for GarbageCollect.
CREATE TABLE rate_limits (
	window_start_ns bigint NOT NULL,
	window_end_ns   bigint NOT NULL,
	key             bytea NOT NULL,
	hits            bigint NOT NULL,
	PRIMARY KEY (window_start_ns, window_end_ns, key)
);
