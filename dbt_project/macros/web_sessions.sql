{#- Post-hook of int_web_sessions_identified: drop the sessions a correction took every event
    from. Such a session starts on a day a correction took web events from since the run's mark
    (ingest records the days of all of a session's events: the contract's group_column), so
    only those days' sessions are looked up, and only in events from the first of them on (a
    session's events come at or after its start). Every session against every event took
    1.2-1.7 s of each day's run at L, where most days bring no such correction. -#}
{% macro drop_emptied_sessions() -%}
    {#- read when the hook runs, not when dbt parses it (as the model reads the days) -#}
    {%- set days = replaced_days_since('web_events', recorded_high_water(this.identifier)) if execute else [] -%}
    {%- if days %}
    delete from {{ this }}
    where cast(session_start as date) in ({{ day_literals(days) }})
        and not exists (
            select 1
            from {{ ref('stg_web_events__events') }} as events
            where events.session_id = {{ this }}.session_id
                and events.event_at >= cast('{{ days[0] }}' as timestamp)
        )
    {%- else %}
    select 1  {#- nothing to drop: the hook's own statement #}
    {%- endif %}
{%- endmacro %}
