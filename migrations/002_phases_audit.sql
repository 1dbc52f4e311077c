-- The runbook's four phases and their steps: the phase state lives here, so
-- any api or worker process restarted mid-phase finds it as it stood.
CREATE TABLE phases (
  n           INT PRIMARY KEY CHECK (n BETWEEN 1 AND 4),
  state       TEXT NOT NULL DEFAULT 'not_started'
              CHECK (state IN ('not_started', 'running', 'waiting', 'completed', 'failed', 'halted')),
  params      JSONB NOT NULL DEFAULT '{}',
  started_by  TEXT,
  started_at  TIMESTAMPTZ,
  finished_at TIMESTAMPTZ
);
INSERT INTO phases (n) VALUES (1), (2), (3), (4);

CREATE TABLE phase_steps (
  phase        INT  NOT NULL REFERENCES phases (n),
  id           TEXT NOT NULL,          -- the runbook's numbering, e.g. '2.5'
  position     INT  NOT NULL,
  title        TEXT NOT NULL,
  kind         TEXT NOT NULL CHECK (kind IN ('auto', 'manual')),
  state        TEXT NOT NULL DEFAULT 'pending'
               CHECK (state IN ('pending', 'running', 'waiting_confirmation', 'done', 'failed', 'skipped')),
  started_at   TIMESTAMPTZ,
  finished_at  TIMESTAMPTZ,
  detail       JSONB NOT NULL DEFAULT '{}',
  confirmed_by TEXT,
  confirmed_at TIMESTAMPTZ,
  PRIMARY KEY (phase, id)
);

-- Every state change an operator causes.
CREATE TABLE audit_log (
  id     BIGSERIAL PRIMARY KEY,
  at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  actor  TEXT NOT NULL,
  action TEXT NOT NULL,
  detail JSONB NOT NULL DEFAULT '{}'
);
