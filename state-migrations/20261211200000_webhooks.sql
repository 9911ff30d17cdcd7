-- Webhook subscriptions and their deliveries (issue 23). A subscription's signing key lives in
-- Secrets Manager; only its ARN is here. `fanned_through` is the last event id for which the
-- subscription has its delivery rows; a delivery is one event to one subscription, delivered
-- in order per (subscription, tenant) and retried until `retry_for` has passed.
CREATE TABLE webhook_subscriptions (
    id uuid PRIMARY KEY,
    url text NOT NULL,
    -- Event types delivered; empty: every type.
    types text[] NOT NULL DEFAULT '{}',
    description text NOT NULL DEFAULT '',
    secret_arn text NOT NULL,
    -- Raised by each rotation; a process's cache of keys is keyed by it.
    key_version integer NOT NULL DEFAULT 1,
    -- After a rotation the previous key signs too, until then.
    previous_until timestamptz,
    enabled boolean NOT NULL DEFAULT true,
    disabled_reason text,
    disabled_at timestamptz,
    fanned_through bigint NOT NULL DEFAULT 0,
    -- The oldest failure since the last success.
    failing_since timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text,
    CHECK (enabled OR disabled_reason IS NOT NULL)
);

CREATE TYPE webhook_delivery_state AS ENUM ('pending', 'delivered', 'failed');

CREATE TABLE webhook_deliveries (
    id bigserial PRIMARY KEY,
    subscription_id uuid NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id bigint NOT NULL,
    -- The event's tenant ('' for events about the fleet): deliveries of one key go in order.
    tenant_key text NOT NULL,
    state webhook_delivery_state NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    next_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- The retry window (`TENANTD_WEBHOOK_RETRY_FOR`) runs from the first attempt.
    first_attempt_at timestamptz,
    finished_at timestamptz,
    last_status integer,
    replay boolean NOT NULL DEFAULT false,
    CHECK ((state = 'pending') = (finished_at IS NULL))
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (subscription_id, tenant_key, id)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE state = 'pending';

-- The delivery log: one row per attempt.
CREATE TABLE webhook_attempts (
    id bigserial PRIMARY KEY,
    subscription_id uuid NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    delivery_id bigint NOT NULL,
    event_id bigint NOT NULL,
    attempt integer NOT NULL,
    status_code integer,
    error text,
    duration_ms integer NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_by_subscription ON webhook_attempts (subscription_id, id DESC);

-- Where a stream of every event stands (the EventBridge bus): delivered through this id.
CREATE TABLE event_sinks (
    name text PRIMARY KEY,
    delivered_through bigint NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_at timestamptz NOT NULL DEFAULT now(),
    failing_since timestamptz,
    last_error text
);
