{#- What the incremental facts rewrote, for the models built on them (fct_customer_month).

    A fact's pre-hook (delete_incremental_window) records the days it rewrites and the
    customers of the rows it deletes there:

      ops._fact_rewritten_days       (model, source, first_day, after_day): the days
                                     [first_day, after_day) of the fact (after_day null: from
                                     first_day on) rewritten whole, or with `source` only that
                                     source's rows; first_day null: the whole table (a full
                                     build);
      ops._fact_rewritten_customers  (model, customer_id, month_start): the customers and
                                     months of the rows the pre-hook deleted.

    (Names starting with _ are bookkeeping, which publish leaves out.)

    A customer month of the fact changed only if it is among the deleted rows' customer months
    or holds a row on the rewritten days now. A reader takes the records when it runs and
    deletes them in its own transaction (fact_rewrites, clear_fact_rewrites): a reader that
    fails leaves them for its next run; facts built in a run without the reader leave theirs
    for the next run that has it. -#}

{% macro create_fact_rewrites() -%}
    {%- do run_query('create schema if not exists ops') -%}
    {%- do run_query(
        'create table if not exists ops._fact_rewritten_days (model ' ~ dbt.type_string()
        ~ ', source ' ~ dbt.type_string() ~ ', first_day date, after_day date)'
    ) -%}
    {%- do run_query(
        'create table if not exists ops._fact_rewritten_customers (model ' ~ dbt.type_string()
        ~ ', customer_id ' ~ dbt.type_string() ~ ', month_start date)'
    ) -%}
    {%- do adapter.commit() -%}
    select 1  {#- the hook's own statement: the work is done above #}
{%- endmacro %}

{#- Part of a fact's pre-hook, before its delete: records what the run rewrites (`bounds`:
    incremental_bounds(); none when the run writes the whole table). -#}
{% macro log_fact_rewrite(bounds) -%}
    {%- set rows = [] -%}
    {%- if bounds -%}
        {%- for first, after in incremental_ranges(bounds) -%}
            {%- do rows.append([none, first, after]) -%}
        {%- endfor -%}
        {%- for source, days in bounds.get('source_days', {}).items() | sort -%}
            {%- for first, after in day_ranges(days) -%}
                {%- do rows.append([source, first, after]) -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- else -%}
        {%- do rows.append([none, none, none]) -%}
    {%- endif -%}
    insert into ops._fact_rewritten_days (model, source, first_day, after_day) values
    {%- for source, first, after in rows %}
        ('{{ this.identifier }}', {{ ("'" ~ source ~ "'") if source else 'null' }},
         {{- ' ' ~ (date_literal(first) if first else 'cast(null as date)') }},
         {{- ' ' ~ (date_literal(after) if after else 'cast(null as date)') }}){{ ',' if not loop.last }}
    {%- endfor %};
    {%- if bounds %}
    insert into ops._fact_rewritten_customers (model, customer_id, month_start)
    select distinct
        '{{ this.identifier }}',
        customer_id,
        cast({{ dbt.date_trunc('month', 'date_day') }} as date)
    from {{ this }}
    where customer_id is not null
        and {{ in_incremental_window(bounds) }};
    {%- endif %}
{%- endmacro %}

{#- What `facts` (relations) rewrote since their reader last ran: {'whole': true} if one of them
    was built whole, else {'whole': false, 'months': the months (datetime.date month starts)
    before `before` where they changed rows, 'customer_months': SQL selecting (customer_id,
    month_start) of the customer months there that may have changed}. -#}
{% macro fact_rewrites(facts, before) -%}
    {%- set names = [] -%}
    {%- set by_name = {} -%}
    {%- for fact in facts -%}
        {%- do names.append("'" ~ fact.identifier ~ "'") -%}
        {%- do by_name.update({fact.identifier: fact}) -%}
    {%- endfor -%}
    {%- set logged = run_query(
        'select model, source, first_day, after_day from ops._fact_rewritten_days'
        ~ ' where model in (' ~ (names | join(', ')) ~ ')'
        ~ ' and (first_day is null or first_day < ' ~ date_literal(before) ~ ')'
        ~ ' order by model, source, first_day'
    ) -%}
    {%- set months = [] -%}
    {%- set terms = {} -%}
    {%- for model, source, first, after in logged.rows -%}
        {%- if first is none -%}
            {{ return({'whole': true}) }}
        {%- endif -%}
        {%- set last = [after or before, before] | min -%}
        {%- for month in month_starts(first, last) if month not in months -%}
            {%- do months.append(month) -%}
        {%- endfor -%}
        {%- set term = in_day_range('date_day', first, last, 'date') -%}
        {%- do terms.setdefault(model, []).append(("(source = '" ~ source ~ "' and " ~ term ~ ')') if source else term) -%}
    {%- endfor -%}
    {%- set removed = run_query(
        'select distinct month_start from ops._fact_rewritten_customers'
        ~ ' where model in (' ~ (names | join(', ')) ~ ') and month_start < ' ~ date_literal(before)
    ) -%}
    {%- for month in removed.columns[0].values() if month not in months -%}
        {%- do months.append(month) -%}
    {%- endfor -%}
    {%- set selects = [
        'select customer_id, month_start from ops._fact_rewritten_customers where model in ('
        ~ (names | join(', ')) ~ ')'
    ] -%}
    {%- for model, model_terms in terms.items() -%}
        {%- do selects.append(
            'select customer_id, cast(' ~ dbt.date_trunc('month', 'date_day') ~ ' as date) from ' ~ by_name[model]
            ~ ' where customer_id is not null and (' ~ (model_terms | join(' or ')) ~ ')'
        ) -%}
    {%- endfor -%}
    {{ return({'whole': false, 'months': months | sort, 'customer_months': selects | join('\nunion\n')}) }}
{%- endmacro %}

{#- The first days of the months holding a day of [first, after) (datetime.date). -#}
{% macro month_starts(first, after) -%}
    {%- set months = [] -%}
    {%- for k in range((after.year - first.year) * 12 + after.month - first.month + 1) -%}
        {%- set index = first.month - 1 + k -%}
        {%- set month = modules.datetime.date(first.year + index // 12, index % 12 + 1, 1) -%}
        {%- if month < after -%}
            {%- do months.append(month) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(months) }}
{%- endmacro %}

{#- The reader's pre-hook, once it has used them: the records of `facts` are consumed. -#}
{% macro clear_fact_rewrites(facts) -%}
    {%- set names = [] -%}
    {%- for fact in facts -%}
        {%- do names.append("'" ~ fact.identifier ~ "'") -%}
    {%- endfor -%}
    delete from ops._fact_rewritten_days where model in ({{ names | join(', ') }});
    delete from ops._fact_rewritten_customers where model in ({{ names | join(', ') }})
{%- endmacro %}
