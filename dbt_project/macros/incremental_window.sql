{#- Incremental facts by date with a lookback window.

    A run rebuilds (1) every day from run_date - lookback_days onwards, so late files within
    the window land, and (2) any older day that received rows loaded after the table's last
    load (_loaded_at high-water mark): a corrected file, a late cancellation. Both sets of days
    are replaced whole (delete+insert by date_day), which is what makes an incremental run
    equal a full refresh. The bounds are read before the pre-hook deletes anything. -#}
{% macro incremental_bounds() -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set lookback = var('lookback_days') | int -%}
    {%- set result = run_query("select max(date_day), max(_loaded_at) from " ~ this) -%}
    {%- set max_day = result.columns[0].values()[0] -%}
    {%- set high_water = result.columns[1].values()[0] -%}
    {%- set run_date = var('run_date', none) -%}
    {%- if run_date -%}
        {%- set anchor = modules.datetime.date.fromisoformat(run_date | string) -%}
    {%- elif max_day -%}
        {%- set anchor = max_day -%}
    {%- else -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set start = anchor - modules.datetime.timedelta(days=lookback) -%}
    {{ return({
        'start': start.isoformat(),
        'high_water': (high_water | string) if high_water else '1900-01-01 00:00:00',
    }) }}
{%- endmacro %}

{#- Pre-hook: empty the window's days, so a day whose rows all disappeared is emptied too. -#}
{% macro delete_incremental_window() -%}
    {%- set bounds = incremental_bounds() -%}
    {%- if bounds -%}
        delete from {{ this }} where date_day >= cast('{{ bounds.start }}' as date)
    {%- endif -%}
{%- endmacro %}

{#- The rows of `relation_name` (a CTE holding date_day and _loaded_at) this run must write. -#}
{% macro select_incremental_window(relation_name) -%}
    {%- set bounds = incremental_bounds() -%}
    select *
    from {{ relation_name }}
    {%- if bounds %}
    where date_day >= cast('{{ bounds.start }}' as date)
        or date_day in (
            select distinct date_day
            from {{ relation_name }}
            where _loaded_at > cast('{{ bounds.high_water }}' as timestamp)
        )
    {%- endif %}
{%- endmacro %}
