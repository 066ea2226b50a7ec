-- The audit log at millions of rows (Harbor's /audit-logs, /auditlog-exts and the project logs).

-- Failed logins were recorded as operation 'login_failed'; Harbor records operation 'login'
-- with a failed result (event type login_user).
UPDATE audit_log SET operation = 'login' WHERE operation = 'login_failed' AND resource_type = 'user';

-- Pages: every list is ordered newest first (op_time DESC, id DESC), and each filter Harbor
-- offers has an index that yields its rows already in that order, so a page reads page_size
-- index entries (SQLite appends the rowid to every index, which settles ties on op_time) and
-- never sorts the matches. With two filters, one index is walked and the other filter checked
-- on its rows; a combination that matches nothing is not listed at all (its total, 0, comes
-- first). 0001 has (op_time) and (project_id, op_time).
CREATE INDEX audit_log_operator_time ON audit_log (operator, op_time);
CREATE INDEX audit_log_type_time ON audit_log (resource_type, op_time);
CREATE INDEX audit_log_operation_time ON audit_log (operation, op_time);
CREATE INDEX audit_log_project_operation_time ON audit_log (project_id, operation, op_time);
CREATE INDEX audit_log_resource_time ON audit_log (resource, op_time);

-- Counts (X-Total-Count) are exact, but counting index entries costs time in proportion to the
-- matches (about 25 million a second): 8 million pulls take a third of a second. So rows are
-- also tallied per UTC day and per (resource_type, operation, project, operator), by triggers,
-- in the transaction that writes the row. A count over whole days sums the tally (a few
-- thousand rows a day); the partial days at the ends of a time range are counted in the log
-- itself through the indexes above. project_id 0 stands for "no project".
CREATE TABLE audit_log_daily (
    day BIGINT NOT NULL,
    resource_type TEXT NOT NULL,
    operation TEXT NOT NULL,
    project_id BIGINT NOT NULL,
    operator TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (day, resource_type, operation, project_id, operator)
) WITHOUT ROWID;
CREATE INDEX audit_log_daily_operator ON audit_log_daily (operator, day);
CREATE INDEX audit_log_daily_project ON audit_log_daily (project_id, day);

-- Rows written before this migration.
INSERT INTO audit_log_daily (day, resource_type, operation, project_id, operator, n)
SELECT op_time / 86400000, resource_type, operation, COALESCE(project_id, 0), operator, COUNT(*)
FROM audit_log GROUP BY 1, 2, 3, 4, 5;

CREATE TRIGGER audit_log_daily_insert AFTER INSERT ON audit_log BEGIN
    INSERT INTO audit_log_daily (day, resource_type, operation, project_id, operator, n)
    VALUES (NEW.op_time / 86400000, NEW.resource_type, NEW.operation, COALESCE(NEW.project_id, 0), NEW.operator, 1)
    ON CONFLICT (day, resource_type, operation, project_id, operator) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER audit_log_daily_delete AFTER DELETE ON audit_log BEGIN
    UPDATE audit_log_daily SET n = n - 1
    WHERE day = OLD.op_time / 86400000 AND resource_type = OLD.resource_type AND operation = OLD.operation
      AND project_id = COALESCE(OLD.project_id, 0) AND operator = OLD.operator;
END;

-- A change of a tallied column (masking a user name, for example) moves the row's count.
CREATE TRIGGER audit_log_daily_update AFTER UPDATE OF op_time, resource_type, operation, project_id, operator ON audit_log BEGIN
    UPDATE audit_log_daily SET n = n - 1
    WHERE day = OLD.op_time / 86400000 AND resource_type = OLD.resource_type AND operation = OLD.operation
      AND project_id = COALESCE(OLD.project_id, 0) AND operator = OLD.operator;
    INSERT INTO audit_log_daily (day, resource_type, operation, project_id, operator, n)
    VALUES (NEW.op_time / 86400000, NEW.resource_type, NEW.operation, COALESCE(NEW.project_id, 0), NEW.operator, 1)
    ON CONFLICT (day, resource_type, operation, project_id, operator) DO UPDATE SET n = n + 1;
END;
