-- WebDAV dead properties: what clients store on a file or folder with PROPPATCH
-- (Windows' file times and attributes, Finder's tags), by path ('' for the vault's
-- root), namespace and name, with the property's XML element as sent. They move with
-- their entry and are dropped with it; they are client metadata, not tenant files, so
-- exports and the isolation check do not carry them.
CREATE TABLE dav_properties (
    path TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    xml BLOB NOT NULL,
    PRIMARY KEY (path, namespace, name)
) WITHOUT ROWID;

-- Their bytes count against the quota like files and the trash (`bytes_charged`).
INSERT INTO usage_counters (name, value) VALUES ('property_bytes', 0);
CREATE TRIGGER dav_properties_insert AFTER INSERT ON dav_properties BEGIN
    UPDATE usage_counters SET value = value + length(NEW.xml) WHERE name = 'property_bytes';
END;
CREATE TRIGGER dav_properties_update AFTER UPDATE OF xml ON dav_properties BEGIN
    UPDATE usage_counters SET value = value - length(OLD.xml) + length(NEW.xml)
        WHERE name = 'property_bytes';
END;
CREATE TRIGGER dav_properties_delete AFTER DELETE ON dav_properties BEGIN
    UPDATE usage_counters SET value = value - length(OLD.xml) WHERE name = 'property_bytes';
END;
