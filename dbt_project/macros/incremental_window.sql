{#- Incremental facts by date with a lookback window.

    A run rebuilds (1) every day from run_date - lookback_days onwards (without run_date, from
    the latest day in the table), so late files within the window land, and (2) any older day
    that received input rows loaded after the table's last load (_loaded_at high-water mark):
    a corrected file, a late cancellation; or whose rows a correction loaded since deleted
    (raw._replaced_days: a file corrected to fewer rows, or to none), or whose calls a phone
    now matches to another customer (raw._replaced_days too: ingest's _record_rematched_days).
    These days are replaced whole (the pre-hook deletes them, the model appends them again),
    which is what makes an incremental run equal a full refresh; in a fact whose rows each come
    from one source (incremental_fact's `sources`), an older day that only one source's late
    rows or corrections name is replaced for that source's rows. Rows of older days that must
    take another customer version are updated in place (rekey_customers).

    The older days are found in the model's inputs, declared through incremental_fact()
    ({model: timestamp column whose date is the fact's date_day}), and written into the SQL as
    literals; each fact cuts its inputs to those days in its first CTE
    (where_in_incremental_window), before its lookups. The bounds are read before the pre-hook
    deletes anything. -#}
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
    {%- set bounds = {'start': start, 'high_water': high_water, 'days': [], 'source_days': {}} -%}
    {%- do add_days_loaded_after(bounds) -%}
    {{ return(bounds) }}
{%- endmacro %}

{#- Adds to `bounds` the days before its start holding rows of the model's declared inputs
    loaded after its high-water mark (ISO strings): into `days`, rewritten whole, or for an
    input with a source (meta.incremental_sources) into `source_days`, where only that
    source's rows are rewritten; corrections' days likewise, by the source they corrected. -#}
{% macro add_days_loaded_after(bounds) -%}
    {%- set meta = config.get('meta', {}) -%}
    {%- set sources = meta.get('incremental_sources', {}) -%}
    {%- set inputs = [] -%}
    {%- for model, column in meta.get('incremental_inputs', {}).items() -%}
        {%- do inputs.append({'relation': ref(model), 'date': column, 'tag': sources.get(model, '')}) -%}
    {%- endfor -%}
    {%- set own = sources.values() | list -%}
    {%- for tag, day in tagged_dates_loaded_after(inputs, bounds.high_water, bounds.start) -%}
        {%- if tag in own -%}
            {%- do bounds.source_days.setdefault(tag, []).append(day | string) -%}
        {%- elif (day | string) not in bounds.days -%}
            {%- do bounds.days.append(day | string) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}

{#- Whether a correction of `source` took rows away since `high_water` (raw._replaced_days). -#}
{% macro replaced_since(source_name, high_water) -%}
    {{ return(replaced_days_since(source_name, "cast('" ~ high_water ~ "' as timestamp)") | length > 0) }}
{%- endmacro %}

{#- The days (datetime.date, ascending) a correction of `source_name` took rows from since
    `since` (SQL of a timestamp), from raw._replaced_days. -#}
{% macro replaced_days_since(source_name, since) -%}
    {%- set replaced = replaced_days_relation() -%}
    {%- if replaced is none -%}
        {{ return([]) }}
    {%- endif -%}
    {{ return(run_query(
        'select distinct day from ' ~ replaced ~ " where source = '" ~ source_name ~ "'"
        ~ ' and replaced_at > (' ~ since ~ ') order by day'
    ).columns[0].values() | list) }}
{%- endmacro %}

{#- Part of a fact's pre-hook, after the window's delete: its older rows take the customer
    version now valid at their event (`event_at`), for the customers whose versions may have
    changed since the table's high-water mark. A version can arrive late (a customers file
    delivered after the days it covers: at L, day 732's versions covered rows as old as three
    weeks) or go (a customers file corrected without it). The customers are those with a
    version loaded after the mark and, after a customers correction, those of rows whose
    version is gone. Updated in place: rebuilding their days took day 732's build at L from
    57 s to 127 s. The window's rows, deleted before, are written with the right versions. -#}
{% macro rekey_customers(event_at, bounds) -%}
    {%- if bounds -%}
    {%- set versions = ref('int_customers_versioned') -%}
    update {{ this }} as facts
    set customer_key = coalesce((
        select versions.customer_key
        from {{ versions }} as versions
        where versions.customer_id = facts.customer_id
            and facts.{{ event_at }} >= versions.effective_from
            and facts.{{ event_at }} < versions.valid_to
    ), -1)
    where facts.customer_id in (
        select customer_id from {{ versions }}
        where _loaded_at > cast('{{ bounds.high_water }}' as timestamp)
        {%- if replaced_since('customers', bounds.high_water) %}
        union
        select customer_id from {{ this }}
        where customer_key <> -1 and customer_key not in (select customer_key from {{ versions }})
        {%- endif %}
    )
    {%- endif -%}
{%- endmacro %}

{#- The distinct dates before `before` of rows loaded after `high_water`, as (tag, date) pairs
    (datetime.date, ascending): `inputs` is a list of {'relation': ..., 'date': SQL expression
    of the row's date, 'tag': optional, else ''}; and the days a correction took rows away
    from, which no loaded row may name, tagged with the corrected source. Shared by the facts
    (days) and fct_customer_month (finance months). -#}
{% macro tagged_dates_loaded_after(inputs, high_water, before) -%}
    {%- if not inputs -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set selects = [] -%}
    {%- for input in inputs -%}
        {%- do selects.append(
            "select distinct '" ~ input.get('tag', '') ~ "' as tag, cast(" ~ input.date ~ ' as date) as loaded_date'
            ~ ' from ' ~ input.relation ~ " where _loaded_at > cast('" ~ high_water ~ "' as timestamp)"
        ) -%}
    {%- endfor -%}
    {%- set replaced = replaced_days_relation() -%}
    {%- if replaced is not none -%}
        {%- do selects.append(
            'select distinct source, day from ' ~ replaced ~ " where replaced_at > cast('" ~ high_water ~ "' as timestamp)"
        ) -%}
    {%- endif -%}
    {%- set result = run_query(
        'select distinct tag, loaded_date from (' ~ (selects | join(' union all ')) ~ ') as loaded'
        ~ " where loaded_date < cast('" ~ before ~ "' as date) order by loaded_date, tag"
    ) -%}
    {{ return(result.rows | map('list') | list) }}
{%- endmacro %}

{#- raw._replaced_days (the days of the rows corrections deleted), or none in a warehouse whose
    last ingest predates it: ingest creates it. -#}
{% macro replaced_days_relation() -%}
    {%- set relation = source('raw', '_replaced_days') -%}
    {{ return(adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier
    )) }}
{%- endmacro %}

{#- The days (ISO strings) as a list of SQL dates. -#}
{% macro day_literals(days) -%}
    {%- for day in days %}{{ date_literal(day) }}{{ ', ' if not loop.last }}{% endfor %}
{%- endmacro %}

{#- Days (ISO strings, ascending) as runs of consecutive days, [first, day after the last]
    (dates). A corrected or re-delivered file often names a month of days in a row (voc cases
    updated since), which become one range: a range reaches each scan of a view's union,
    where a list of days became a join after the union, over every row. -#}
{% macro day_ranges(days) -%}
    {%- set one_day = modules.datetime.timedelta(days=1) -%}
    {%- set ranges = [] -%}
    {%- for text in days -%}
        {%- set day = modules.datetime.date.fromisoformat(text) -%}
        {%- if ranges and ranges[-1][1] == day -%}
            {%- do ranges.append([ranges.pop()[0], day + one_day]) -%}
        {%- else -%}
            {%- do ranges.append([day, day + one_day]) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(ranges) }}
{%- endmacro %}

{#- The days a run rewrites whole as ranges (day_ranges), the last open-ended (none) from the
    window's start, which absorbs the older days that touch it. -#}
{% macro incremental_ranges(bounds) -%}
    {%- set ranges = day_ranges(bounds.days) -%}
    {%- set start = modules.datetime.date.fromisoformat(bounds.start) -%}
    {%- if ranges and ranges[-1][1] >= start -%}
        {%- set start = ranges.pop()[0] -%}
    {%- endif -%}
    {%- do ranges.append([start, none]) -%}
    {{ return(ranges) }}
{%- endmacro %}

{#- Everything a run rewrites, as [source, first, after] (as day_ranges): the days rewritten
    whole (incremental_ranges, source none), then each source's own days (bounds.source_days,
    by source). The delete's predicate (in_incremental_ranges) and the facts' records
    (log_fact_rewrite) are both made of it. -#}
{% macro rewritten_ranges(bounds) -%}
    {%- set ranges = [] -%}
    {%- for first, after in incremental_ranges(bounds) -%}
        {%- do ranges.append([none, first, after]) -%}
    {%- endfor -%}
    {%- for source, days in bounds.get('source_days', {}).items() | sort -%}
        {%- for first, after in day_ranges(days) -%}
            {%- do ranges.append([source, first, after]) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(ranges) }}
{%- endmacro %}

{#- SQL predicate: `column` (a date, or with `cast_to` 'timestamp' a timestamp) falls on a day this
    run rewrites: one comparison per range of days (incremental_ranges), which the scan can
    skip row groups by; and for a source with days of its own (bounds.source_days), its rows
    (column `source`) on those days. -#}
{% macro in_incremental_ranges(column, bounds, cast_to='date') -%}
    {%- set terms = [] -%}
    {%- set by_source = {} -%}
    {%- for source, first, after in rewritten_ranges(bounds) -%}
        {%- set term = in_day_range(column, first, after, cast_to) -%}
        {%- if source -%}
            {%- do by_source.setdefault(source, []).append(term) -%}
        {%- else -%}
            {%- do terms.append(term) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for source, ranges in by_source.items() | sort -%}
        {%- do terms.append("(source = '" ~ source ~ "' and (" ~ (ranges | join(' or ')) ~ '))') -%}
    {%- endfor -%}
    ({{ terms | join(' or ') }})
{%- endmacro %}

{#- SQL predicate: `column` in [first, after), or from first on when after is none. -#}
{% macro in_day_range(column, first, after, cast_to) -%}
    {%- set term = column ~ " >= cast('" ~ first ~ "' as " ~ cast_to ~ ")" -%}
    {%- if after is not none -%}
        {%- set term = '(' ~ term ~ ' and ' ~ column ~ " < cast('" ~ after ~ "' as " ~ cast_to ~ '))' -%}
    {%- endif -%}
    {{ return(term) }}
{%- endmacro %}

{#- SQL predicate: the days this run rewrites. -#}
{% macro in_incremental_window(bounds) -%}
    {{ in_incremental_ranges('date_day', bounds) }}
{%- endmacro %}

{#- A WHERE clause for a fact's input rows: those whose `timestamp` falls on a day this run
    rewrites (nothing in a full build). A fact row takes its date_day from one input row, and
    everything else by lookups, so the inputs can be cut before the lookups' joins: DuckDB does
    not push the final date_day filter below a LEFT JOIN, and a day's run joined every input
    row. The comparisons (in_incremental_ranges) let the scan skip row groups by their minimum
    and maximum. `bounds`: incremental_bounds(), which a fact reads once for its SQL
    (each reading queries the table and its inputs). -#}
{% macro where_in_incremental_window(timestamp, bounds) -%}
    {%- if bounds %}
    where {{ in_incremental_ranges(timestamp, bounds, 'timestamp') }}
    {%- endif %}
{%- endmacro %}

{#- Pre-hook: record what the run rewrites (log_fact_rewrite, for fct_customer_month and the
    cubes); empty the window's days, so a day whose rows all disappeared is emptied too; then
    re-key the older rows (rekey_customers), with the same bounds. It is the facts' only delete (strategy
    append): a delete+insert by date_day would empty the whole of a day the run rewrites for
    one source's rows. -#}
{% macro delete_incremental_window(event_at) -%}
    {%- set bounds = incremental_bounds() -%}
    {{ log_fact_rewrite(bounds) }}
    {%- if bounds %}
        delete from {{ this }} where {{ in_incremental_window(bounds) }};
        {{ rekey_customers(event_at, bounds) }}
    {%- endif -%}
{%- endmacro %}

{#- The rows of `relation_name` (a CTE holding date_day) this run must write (`bounds` as for
    where_in_incremental_window). -#}
{% macro select_incremental_window(relation_name, bounds) -%}
    select *
    from {{ relation_name }}
    {%- if bounds %}
    where {{ in_incremental_window(bounds) }}
    {%- endif %}
{%- endmacro %}

{#- Config of an incremental fact by date_day. `inputs` ({model: timestamp column whose date
    is the fact's date_day}) become meta.incremental_inputs and dependencies of the fact;
    `event_at`: the fact's column its customer version is valid at (rekey_customers);
    `sources` ({model: the value of the fact's column `source` in that input's rows, the raw
    source's name}), for a fact whose rows each come from one input: an older day that only
    that input's late rows (or a correction of that source) name is rewritten for that
    source's rows alone. -#}
{% macro incremental_fact(inputs, event_at, sources={}) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ delete_incremental_window('" ~ event_at ~ "') }}",
        meta={'incremental_inputs': inputs, 'incremental_sources': sources},
    ) }}
    {%- for model in inputs %}
-- depends_on: {{ ref(model) }}
    {%- endfor %}
{%- endmacro %}
