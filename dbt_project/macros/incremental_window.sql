{#- Incremental facts by date with a lookback window.

    A run rebuilds (1) every day from run_date - lookback_days onwards (without run_date, from
    the latest day in the table), so late files within the window land, and (2) any older day
    that received input rows loaded after the table's last load (_loaded_at high-water mark):
    a corrected file, a late cancellation. Both sets of days are replaced whole (delete+insert
    by date_day), which is what makes an incremental run equal a full refresh.

    The older days are found in the model's inputs, declared in its config as
    meta.incremental_inputs = {model: timestamp column whose date is the fact's date_day}
    (each also named in a `-- depends_on:` comment), and written into the SQL as literals, so
    the day filter reaches the inputs' scans. The bounds are read before the pre-hook deletes
    anything. -#}
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
    {%- set start = (anchor - modules.datetime.timedelta(days=lookback)).isoformat() -%}
    {%- set high_water = (high_water | string) if high_water else '1900-01-01 00:00:00' -%}
    {{ return({
        'start': start,
        'high_water': high_water,
        'days': days_loaded_after(high_water, start),
    }) }}
{%- endmacro %}

{#- Days before `start` (ISO strings) holding input rows loaded after `high_water`. -#}
{% macro days_loaded_after(high_water, start) -%}
    {%- set inputs = config.get('meta', {}).get('incremental_inputs', {}) -%}
    {%- if not inputs -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set selects = [] -%}
    {%- for model, column in inputs.items() -%}
        {%- do selects.append(
            'select distinct cast(' ~ column ~ ' as date) as date_day from ' ~ ref(model)
            ~ " where _loaded_at > cast('" ~ high_water ~ "' as timestamp)"
        ) -%}
    {%- endfor -%}
    {%- set result = run_query(
        'select distinct date_day from (' ~ (selects | join(' union all ')) ~ ') as loaded'
        ~ " where date_day < cast('" ~ start ~ "' as date) order by date_day"
    ) -%}
    {{ return(result.columns[0].values() | map('string') | list) }}
{%- endmacro %}

{#- SQL predicate: the days this run rewrites. -#}
{% macro in_incremental_window(bounds) -%}
    (date_day >= cast('{{ bounds.start }}' as date)
    {%- if bounds.days %}
        or date_day in ({% for day in bounds.days %}cast('{{ day }}' as date){{ ', ' if not loop.last }}{% endfor %})
    {%- endif %})
{%- endmacro %}

{#- Pre-hook: empty the window's days, so a day whose rows all disappeared is emptied too. -#}
{% macro delete_incremental_window() -%}
    {%- set bounds = incremental_bounds() -%}
    {%- if bounds -%}
        delete from {{ this }} where {{ in_incremental_window(bounds) }}
    {%- endif -%}
{%- endmacro %}

{#- The rows of `relation_name` (a CTE holding date_day) this run must write. -#}
{% macro select_incremental_window(relation_name) -%}
    {%- set bounds = incremental_bounds() -%}
    select *
    from {{ relation_name }}
    {%- if bounds %}
    where {{ in_incremental_window(bounds) }}
    {%- endif %}
{%- endmacro %}
