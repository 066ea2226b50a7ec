-- Personal access tokens: a user's secrets for the command line, shown once, stored as SHA-256.
CREATE TABLE access_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    -- JSON array of project names the token is limited to; NULL: every project the user reaches.
    projects TEXT,
    -- JSON array of actions the token is limited to; NULL: every action the user holds.
    actions TEXT,
    expires_at BIGINT,
    creation_time BIGINT NOT NULL,
    last_used BIGINT,
    UNIQUE (user_id, name)
);
