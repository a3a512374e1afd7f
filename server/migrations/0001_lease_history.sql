-- Lease history (README "Lease history in PostgreSQL", DESIGN.md "Lease history"): one row per
-- lease event, appended by every xdhcpd server that points `xdhcpd.history-database` (or
-- `xdhcpd.lease-database`) here. Range-partitioned by the event's time, one partition per UTC
-- week from Monday: the servers create partitions ahead and drop those past the retention
-- (`lease_history_YYYYMMDD`, the week's first day), so expiring months of history is a DROP
-- TABLE, not a DELETE.
CREATE TABLE lease_history (
    at          timestamptz NOT NULL,
    event       text        NOT NULL
        CHECK (event IN ('grant', 'renew', 'release', 'expire', 'decline', 'abandon')),
    address     inet        NOT NULL,
    -- ARP hardware type (1 = Ethernet) and address bytes, as the lease file's `hardware`.
    htype       smallint,
    hardware    bytea,
    -- Option 61.
    client_id   bytea,
    -- Option 82 sub-options 1 and 2 (RFC 3046).
    circuit_id  bytea,
    remote_id   bytea,
    -- giaddr of the request that made the event.
    relay       inet,
    starts      timestamptz,
    -- NULL: `ends never` (BOOTP, infinite leases).
    ends        timestamptz,
    server      text        NOT NULL,
    -- What made the change: engine, kernel_renewal, omapi, expiry (changes::ChangeSource).
    source      text        NOT NULL
) PARTITION BY RANGE (at);

-- "Who held A at T": the newest event of A before T (one index descent per partition).
CREATE INDEX lease_history_address_at ON lease_history (address, at);
-- "The leases of MAC M, newest first".
CREATE INDEX lease_history_hardware_at ON lease_history (hardware, at);
