-- The PostgreSQL lease backend (`option xdhcpd.lease-database`, DESIGN.md "Leases in
-- PostgreSQL"): one row per address, written by the group committer in one transaction per
-- batch. `record` is the lease as dhcpd.leases writes it, so every field ISC keeps (variables,
-- `on` statements, billing, failover times) survives; the other columns are for people and
-- indices.
CREATE TABLE leases (
    address     inet        PRIMARY KEY,
    state       text        NOT NULL,
    htype       smallint,
    hardware    bytea,
    client_id   bytea,
    starts      timestamptz,
    -- NULL: `ends never`.
    ends        timestamptz,
    server      text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    record      text        NOT NULL
);
CREATE INDEX leases_hardware ON leases (hardware);
CREATE INDEX leases_updated_at ON leases (updated_at);

-- The lease file's other records: failover states, OMAPI hosts, groups, the server DUID, by
-- what identifies them (`failover peer NAME`, `host NAME`, `group NAME`, `server-duid`).
CREATE TABLE lease_file_records (
    key         text        PRIMARY KEY,
    record      text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
