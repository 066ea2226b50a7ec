-- A second, coarser tally of the audit log for counts that name neither a user nor a project
-- (no filter, a time range, resource_type, operation): rows per UTC hour and per
-- (resource_type, operation), about ten rows an hour whatever the traffic. Such a count sums
-- the whole hours of its range here (a few thousand rows for ten days) and counts the
-- partial hours at either end in the log (at most two hours of rows), where the daily tally
-- of 0008 would sum one row per active user, project and day and count up to two days of
-- rows. Kept by triggers in the transaction that writes, deletes or changes each row.
CREATE TABLE audit_log_hourly (
    hour BIGINT NOT NULL,
    resource_type TEXT NOT NULL,
    operation TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (hour, resource_type, operation)
) WITHOUT ROWID;

-- Rows written before this migration.
INSERT INTO audit_log_hourly (hour, resource_type, operation, n)
SELECT op_time / 3600000, resource_type, operation, COUNT(*) FROM audit_log GROUP BY 1, 2, 3;

CREATE TRIGGER audit_log_hourly_insert AFTER INSERT ON audit_log BEGIN
    INSERT INTO audit_log_hourly (hour, resource_type, operation, n)
    VALUES (NEW.op_time / 3600000, NEW.resource_type, NEW.operation, 1)
    ON CONFLICT (hour, resource_type, operation) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER audit_log_hourly_delete AFTER DELETE ON audit_log BEGIN
    UPDATE audit_log_hourly SET n = n - 1
    WHERE hour = OLD.op_time / 3600000 AND resource_type = OLD.resource_type AND operation = OLD.operation;
END;

CREATE TRIGGER audit_log_hourly_update AFTER UPDATE OF op_time, resource_type, operation ON audit_log BEGIN
    UPDATE audit_log_hourly SET n = n - 1
    WHERE hour = OLD.op_time / 3600000 AND resource_type = OLD.resource_type AND operation = OLD.operation;
    INSERT INTO audit_log_hourly (hour, resource_type, operation, n)
    VALUES (NEW.op_time / 3600000, NEW.resource_type, NEW.operation, 1)
    ON CONFLICT (hour, resource_type, operation) DO UPDATE SET n = n + 1;
END;
