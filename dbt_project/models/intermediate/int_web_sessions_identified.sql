-- One row per web/app session with the customer it belongs to: a customer_id carried by its
-- events, else the customer its anonymous_id logged in as at or before the session's end.
-- Sessions of an anonymous_id before its first login stay anonymous (kept, not dropped), so
-- a later login never rewrites history and incremental builds equal full ones.
--
-- Incremental: a run rebuilds the sessions with events loaded since the last run, every
-- session of a browser (anonymous_id) that logged in in those events, and the sessions
-- starting on a day a correction took web events from (raw._replaced_days), from all their
-- events and all the logins of their browsers: the same rows a full build gives them. The
-- post-hook drops sessions whose every event a correction removed (drop_emptied_sessions).
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='session_id',
        on_schema_change='fail',
        post_hook="{{ drop_emptied_sessions() }}",
    )
}}
{#- The events are read where each part needs them, not through one CTE: DuckDB materializes
    a CTE read more than once, every event with every column. #}
with
{% if is_incremental() %}
new_events as (
    select session_id, anonymous_id, customer_id, event_type
    from {{ ref('stg_web_events__events') }}
    where _loaded_at > ({{ loaded_high_water() }})
),

touched_sessions as (
    select session_id from new_events
    union
    select session_id
    from {{ this }}
    where anonymous_id in (
        select anonymous_id
        from new_events
        where event_type = 'login'
            and customer_id is not null
    )
    {%- set days = replaced_days_since('web_events', loaded_high_water()) if execute else [] %}
    {%- if days %}
    -- Sessions that a correction took events from: no event loaded since may name them, but
    -- ingest recorded the days of all their events (the contract's group_column).
    union
    select session_id
    from {{ this }}
    where cast(session_start as date) in ({{ day_literals(days) }})
    {%- endif %}
),

events as (
    select *
    from {{ ref('stg_web_events__events') }}
    where session_id in (select session_id from touched_sessions)
),
{% else %}
events as (
    select * from {{ ref('stg_web_events__events') }}
),
{% endif %}

{#- The session's first event, the one all three first_by() fields come from. #}
{%- set first_event = ['event_at', 'event_id'] %}
sessions as (
    select
        session_id,
        min(event_at) as session_start,
        max(event_at) as session_end,
        {{ first_by('anonymous_id', first_event) }} as anonymous_id,
        {{ first_by('channel', first_event) }} as channel,
        {{ first_by('customer_id', first_event) }} as first_event_customer_id,
        max(customer_id) as session_customer_id,
        count(*) as events,
        max(
            case event_type
                when 'checkout' then 5
                when 'add_to_cart' then 4
                when 'product_view' then 3
                when 'search' then 2
                when 'page_view' then 1
                else 0
            end
        ) as deepest_step,
        max(utm_campaign) as utm_campaign,
        max(_loaded_at) as _loaded_at
    from events
    group by session_id
),

logins as (
    select
        anonymous_id,
        customer_id,
        event_at as login_at
    from {{ ref('stg_web_events__events') }}
    where event_type = 'login'
        and customer_id is not null
        and anonymous_id is not null
        {%- if is_incremental() %}
        and anonymous_id in (select anonymous_id from events)
        {%- endif %}
),

-- The latest login of the session's anonymous_id at or before the session's end, found in
-- one ordered pass per anonymous_id (a running max over "login time|customer"), not by
-- joining every session to every login of the browser.
login_stream as (
    select
        anonymous_id,
        session_end as stream_at,
        1 as stream_order,
        session_id,
        cast(null as {{ dbt.type_string() }}) as login_key
    from sessions
    where anonymous_id is not null
    union all
    select
        anonymous_id,
        login_at as stream_at,
        0 as stream_order,
        cast(null as {{ dbt.type_string() }}) as session_id,
        {{ dbt.concat([dbt.cast('login_at', api.Column.translate_type('string')), "'|'", 'customer_id']) }} as login_key
    from logins
),

latest_logins as (
    select
        session_id,
        max(login_key) over (
            partition by anonymous_id
            order by stream_at, stream_order
            rows between unbounded preceding and current row
        ) as login_key
    from login_stream
),

login_candidates as (
    select
        session_id,
        {{ dbt.split_part('login_key', "'|'", 2) }} as customer_id
    from latest_logins
    where session_id is not null
        and login_key is not null
),

final as (
    select
        sessions.session_id,
        sessions.session_start,
        sessions.session_end,
        sessions.anonymous_id,
        sessions.channel,
        coalesce(sessions.session_customer_id, login_candidates.customer_id) as customer_id,
        case
            when sessions.first_event_customer_id is not null then 'id'
            when coalesce(sessions.session_customer_id, login_candidates.customer_id) is not null then 'login'
            else 'anonymous'
        end as identified_by,
        sessions.events,
        case sessions.deepest_step
            when 5 then 'checkout'
            when 4 then 'add_to_cart'
            when 3 then 'product_view'
            when 2 then 'search'
            when 1 then 'page_view'
            else 'login'
        end as deepest_step,
        sessions.utm_campaign,
        sessions._loaded_at
    from sessions
    left join login_candidates
        on login_candidates.session_id = sessions.session_id
)

select * from final
