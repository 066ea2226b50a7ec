-- The audit log at millions of rows (Harbor's /audit-logs, /auditlog-exts and the project logs).
-- See the SQLite migration of the same number for the reasoning. Here indexes name id
-- explicitly: a PostgreSQL index does not order by the row id.

UPDATE audit_log SET operation = 'login' WHERE operation = 'login_failed' AND resource_type = 'user';

CREATE INDEX audit_log_time_id ON audit_log (op_time, id);
CREATE INDEX audit_log_project_time_id ON audit_log (project_id, op_time, id);
CREATE INDEX audit_log_operator_time ON audit_log (operator, op_time, id);
CREATE INDEX audit_log_type_time ON audit_log (resource_type, op_time, id);
CREATE INDEX audit_log_operation_time ON audit_log (operation, op_time, id);
CREATE INDEX audit_log_project_operation_time ON audit_log (project_id, operation, op_time, id);
CREATE INDEX audit_log_resource_time ON audit_log (resource, op_time, id);
DROP INDEX audit_log_time;
DROP INDEX audit_log_project_time;

-- Rows tallied per UTC day and per (resource_type, operation, project, operator), kept by a
-- trigger in the transaction that writes the row; project_id 0 stands for "no project".
CREATE TABLE audit_log_daily (
    day BIGINT NOT NULL,
    resource_type TEXT NOT NULL,
    operation TEXT NOT NULL,
    project_id BIGINT NOT NULL,
    operator TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (day, resource_type, operation, project_id, operator)
);
CREATE INDEX audit_log_daily_operator ON audit_log_daily (operator, day);
CREATE INDEX audit_log_daily_project ON audit_log_daily (project_id, day);

INSERT INTO audit_log_daily (day, resource_type, operation, project_id, operator, n)
SELECT op_time / 86400000, resource_type, operation, COALESCE(project_id, 0), operator, COUNT(*)
FROM audit_log GROUP BY 1, 2, 3, 4, 5;

CREATE FUNCTION audit_log_daily_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE audit_log_daily SET n = n - 1
        WHERE day = OLD.op_time / 86400000 AND resource_type = OLD.resource_type AND operation = OLD.operation
          AND project_id = COALESCE(OLD.project_id, 0) AND operator = OLD.operator;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO audit_log_daily (day, resource_type, operation, project_id, operator, n)
        VALUES (NEW.op_time / 86400000, NEW.resource_type, NEW.operation, COALESCE(NEW.project_id, 0), NEW.operator, 1)
        ON CONFLICT (day, resource_type, operation, project_id, operator) DO UPDATE SET n = audit_log_daily.n + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER audit_log_daily_count
    AFTER INSERT OR DELETE OR UPDATE OF op_time, resource_type, operation, project_id, operator ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_daily_count();
