-- Usage batches already applied (issue 6, item 4). The data plane writes usage in batches with
-- an id it keeps across retries; the id is recorded in the same transaction as the batch's
-- rows, so a batch whose commit succeeded but whose answer was lost is not added twice.
CREATE TABLE usage_batches (
    id         UUID PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX usage_batches_applied_at ON usage_batches (applied_at);
