-- A second, coarser tally of the audit log: rows per UTC hour and per (resource_type,
-- operation). See the SQLite migration of the same number for the reasoning.
-- Here each (hour, type, operation) is spread over 8 slots (the record's id modulo 8): a
-- PostgreSQL transaction holds the tally row it updated until it commits, and without slots
-- every transaction recording, say, a pull in the same hour would wait for the one before.
-- Counts sum the slots like any other rows, so the SQL that reads the tally is the same on
-- both backends.
CREATE TABLE audit_log_hourly (
    hour BIGINT NOT NULL,
    resource_type TEXT NOT NULL,
    operation TEXT NOT NULL,
    slot SMALLINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (hour, resource_type, operation, slot)
);

INSERT INTO audit_log_hourly (hour, resource_type, operation, slot, n)
SELECT op_time / 3600000, resource_type, operation, id % 8, COUNT(*) FROM audit_log GROUP BY 1, 2, 3, 4;

CREATE FUNCTION audit_log_hourly_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE audit_log_hourly SET n = n - 1
        WHERE hour = OLD.op_time / 3600000 AND resource_type = OLD.resource_type AND operation = OLD.operation
          AND slot = OLD.id % 8;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO audit_log_hourly (hour, resource_type, operation, slot, n)
        VALUES (NEW.op_time / 3600000, NEW.resource_type, NEW.operation, NEW.id % 8, 1)
        ON CONFLICT (hour, resource_type, operation, slot) DO UPDATE SET n = audit_log_hourly.n + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_log_hourly_count
    AFTER INSERT OR DELETE OR UPDATE OF id, op_time, resource_type, operation ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_hourly_count();
