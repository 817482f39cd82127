-- Honest assurance (issue 14): what a device's attestation showed at binding, and per login
-- the class the relying party demanded and the class and methods of the approval. Defaults,
-- so that rows written before, and instances of the previous release that do not name these
-- columns, read as storage's zero values ("" and no methods).
ALTER TABLE devices ADD COLUMN attestation text NOT NULL DEFAULT '';
ALTER TABLE logins ADD COLUMN required_acr text NOT NULL DEFAULT '';
ALTER TABLE logins ADD COLUMN acr text NOT NULL DEFAULT '';
ALTER TABLE logins ADD COLUMN amr text[];
