-- Nodes sharing this control plane, and the address each one is reached at by the
-- others (`node_url`): where `coffer tenant move`, run on the node taking a tenant,
-- pulls the tenant's copy from the node that holds it. Written by `coffer serve` as it
-- starts; nothing here authorizes anything (node-to-node requests carry a token signed
-- with the cluster's node key, and the tenant must be placed on the node asked: fenced
-- for the move's final copy, not for the live copy before it).
CREATE TABLE nodes (
    name       TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    started_at TEXT NOT NULL
);
