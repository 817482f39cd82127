-- The signing certificates of bound phones (PROTOCOL.md section 9), each with the key mcert
-- holds for it, sealed. Keyed by serial number, which OCSP asks by.
CREATE TABLE certificates (
	serial      bytea PRIMARY KEY,
	device_id   text COLLATE "C" NOT NULL,
	account_id  text COLLATE "C" NOT NULL,
	der         bytea NOT NULL,
	private_key bytea,
	created_ns  bigint NOT NULL,
	not_after_ns bigint NOT NULL,
	revoked_ns  bigint,
	reason      integer NOT NULL
);
CREATE INDEX certificates_by_device ON certificates (device_id, created_ns, serial);
CREATE INDEX certificates_revoked ON certificates (revoked_ns, serial) WHERE revoked_ns IS NOT NULL;

-- Relying parties registered for signing.
ALTER TABLE clients ADD COLUMN sign boolean NOT NULL DEFAULT false;
-- A CIBA client's notification endpoint in ping mode; '' in poll mode.
ALTER TABLE clients ADD COLUMN ciba_ping text NOT NULL DEFAULT '';

-- What an event concerns beyond its type: for a signature, its evidence's SHA-256.
ALTER TABLE events ADD COLUMN detail text NOT NULL DEFAULT '';
