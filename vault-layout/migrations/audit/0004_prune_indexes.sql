-- Indexes for retention.
--
-- `events_by_at` finds where pruning must stop: the first row (by sequence number)
-- written on or after the cutoff, since rows are not written in time order when their
-- appenders' clocks differ. `checkpoints_pruning` answers the delete trigger's question
-- (the newest pruning checkpoint) without reading every head checkpoint.

CREATE INDEX events_by_at ON events (at, seq);
CREATE INDEX checkpoints_pruning ON checkpoints (seq) WHERE prunes = 1;
