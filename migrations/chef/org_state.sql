-- Chef Server's enum for org_migration_state.state, as its schema scripts
-- define it. Created only when the database has no type of that name.
CREATE TYPE org_state AS ENUM ('holding', 'ready', 'started', 'completed', 'failed', 'purge_started', 'purge_successful');
