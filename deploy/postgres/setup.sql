-- The PostgreSQL side of a Coffer deployment with several nodes (README, "Scaling out").
-- Run once as a superuser: psql -f deploy/postgres/setup.sql
-- Then give every node `control = "postgres://coffer@DB-HOST:5432/coffer"` and its own
-- `node = "..."`, with the password in the service user's ~/.pgpass (mode 0600), never in
-- coffer.toml. The first node to start creates the schema.

CREATE ROLE coffer LOGIN;          -- then: \password coffer
CREATE DATABASE coffer OWNER coffer ENCODING 'UTF8' TEMPLATE template0;

-- Only Coffer's role reaches it: in pg_hba.conf, allow the nodes' addresses alone, over
-- TLS with scram-sha-256, for example
--   hostssl coffer coffer 10.0.1.0/24 scram-sha-256
-- and nothing for this database from anywhere else. Give the nodes the certificate of
-- the authority that signed the server's (`control_ca_file`); the URL's host must be a
-- name or address in the server's certificate.
REVOKE ALL ON DATABASE coffer FROM PUBLIC;
