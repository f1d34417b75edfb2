-- Jobs accepted by the API and processed by workers. The API inserts a `queued` row before it
-- produces the message; a worker moves it to `processing` and then to `done` or `failed`.
CREATE TABLE jobs (
    job_id           uuid PRIMARY KEY,
    image_key        text        NOT NULL,
    requested_plugin text,
    status           text        NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'processing', 'done', 'failed')),
    overlay_key      text,
    plugin_name      text,
    plugin_version   text,
    plugin_sha256    text,
    error            text,
    attempts         integer     NOT NULL DEFAULT 0,
    timings_ms       jsonb,
    worker_id        text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz
);

CREATE INDEX jobs_created_at_idx ON jobs (created_at DESC, job_id DESC);

-- A job's detections, replaced as a whole each time a worker records the job, so that a
-- redelivered job never leaves duplicates.
CREATE TABLE detections (
    job_id  uuid    NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    idx     integer NOT NULL,
    label   text    NOT NULL,
    score   real    NOT NULL,
    x       integer NOT NULL,
    y       integer NOT NULL,
    width   integer NOT NULL,
    height  integer NOT NULL,
    PRIMARY KEY (job_id, idx)
);

-- Workers and the plugins each has loaded, refreshed by a heartbeat. The API lists the plugins
-- of workers seen recently and rejects a job that names a plugin none of them has.
CREATE TABLE workers (
    worker_id   text PRIMARY KEY,
    hostname    text        NOT NULL,
    started_at  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL
);

CREATE TABLE worker_plugins (
    worker_id   text NOT NULL REFERENCES workers (worker_id) ON DELETE CASCADE,
    name        text NOT NULL,
    version     text NOT NULL,
    sha256      text NOT NULL,
    detects     text[] NOT NULL,
    description text NOT NULL,
    is_default  boolean NOT NULL DEFAULT false,
    loaded_at   timestamptz NOT NULL,
    PRIMARY KEY (worker_id, name)
);
