{#- What the incremental facts rewrote, for the models built on them: fct_customer_month and
    the cubes kept by difference (their *readers*).

    A fact's pre-hook (delete_incremental_window) records the days it rewrites and the
    customers of the rows it deletes there, at its transaction's start (logged_at):

      ops._fact_rewritten_days       (model, source, first_day, after_day, logged_at): the days
                                     [first_day, after_day) of the fact (after_day null: from
                                     first_day on) rewritten whole, or with `source` only that
                                     source's rows; first_day null: the whole table (a full
                                     build);
      ops._fact_rewritten_customers  (model, customer_id, month, logged_at): the customers
                                     (null: rows without one) and months ('YYYY-MM') of the
                                     rows the pre-hook deleted;
      ops._fact_rewrite_reads        (reader, model, read_at): when each reader last read a
                                     fact's records, in its committed run.

    A customer month of the fact changed only if it is among the deleted rows' customer months
    or holds a row on the rewritten days now. A reader reads the records since its last read
    (fact_rewrites) and, in its own transaction, moves its mark on (read_fact_rewrites): a
    reader that fails reads them again in its next run. The records every reader of a fact
    has read are deleted; a reader no longer in the project loses its mark when a run starts.
    A reader without a mark (its first build, or one made before the records existed) sees
    the facts as rewritten whole. Names starting with _ are bookkeeping, which publish leaves
    out. -#}

{% macro create_fact_rewrites() -%}
    {%- set text = dbt.type_string() -%}
    {%- do run_query('create schema if not exists ops') -%}
    {%- do run_query(
        'create table if not exists ops._fact_rewritten_days (model ' ~ text ~ ', source ' ~ text
        ~ ', first_day date, after_day date, logged_at ' ~ dbt.type_timestamp() ~ ')'
    ) -%}
    {%- do run_query(
        'create table if not exists ops._fact_rewritten_customers (model ' ~ text ~ ', customer_id '
        ~ text ~ ', month ' ~ text ~ ', logged_at ' ~ dbt.type_timestamp() ~ ')'
    ) -%}
    {%- do run_query(
        'create table if not exists ops._fact_rewrite_reads (reader ' ~ text ~ ', model ' ~ text
        ~ ', read_at ' ~ dbt.type_timestamp() ~ ')'
    ) -%}
    {#- A reader no longer in the project (removed or renamed) reads nothing again: its mark
        would keep every later record from being deleted. -#}
    {%- if execute -%}
        {%- set models = [] -%}
        {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
            {%- do models.append("'" ~ node.alias ~ "'") -%}
        {%- endfor -%}
        {%- do run_query('delete from ops._fact_rewrite_reads where reader not in (' ~ models | join(', ') ~ ')') -%}
    {%- endif -%}
    {%- do adapter.commit() -%}
    select 1  {#- the hook's own statement: the work is done above #}
{%- endmacro %}

{#- Part of a fact's pre-hook, before its delete: records what the run rewrites (`bounds`:
    incremental_bounds(); none when the run writes the whole table). -#}
{% macro log_fact_rewrite(bounds) -%}
    {%- set rows = rewritten_ranges(bounds) if bounds else [[none, none, none]] -%}
    insert into ops._fact_rewritten_days (model, source, first_day, after_day, logged_at) values
    {%- for source, first, after in rows %}
        ('{{ this.identifier }}', {{ ("'" ~ source ~ "'") if source else 'null' }},
         {{- ' ' ~ (date_literal(first) if first else 'cast(null as date)') }},
         {{- ' ' ~ (date_literal(after) if after else 'cast(null as date)') }}, {{ dbt.current_timestamp() }})
         {{- ',' if not loop.last }}
    {%- endfor %};
    {%- if bounds %}
    insert into ops._fact_rewritten_customers (model, customer_id, month, logged_at)
    select distinct '{{ this.identifier }}', customer_id, month, {{ dbt.current_timestamp() }}
    from {{ this }}
    where {{ in_incremental_window(bounds) }};
    {%- endif %}
{%- endmacro %}

{#- What `facts` (relations) rewrote since this model last read their records: {'whole': true}
    if one of them was built whole (or this model has not read them yet), else {'whole':
    false, 'months': the months (datetime.date month starts) before `before` where they changed
    rows (with `before` only), 'customer_months': SQL selecting (customer_id, month) of the customer
    months (customer_id null: rows without one) that may have changed there}. -#}
{% macro fact_rewrites(facts, before=none) -%}
    {%- if not execute -%}
        {{ return({'whole': true}) }}
    {%- endif -%}
    {%- set names = [] -%}
    {%- set by_name = {} -%}
    {%- for fact in facts -%}
        {%- do names.append("'" ~ fact.identifier ~ "'") -%}
        {%- do by_name.update({fact.identifier: fact}) -%}
    {%- endfor -%}
    {%- set read = run_query(
        "select count(distinct model) from ops._fact_rewrite_reads where reader = '" ~ this.identifier
        ~ "' and model in (" ~ (names | join(', ')) ~ ')'
    ) -%}
    {%- if read.columns[0].values()[0] < facts | length -%}
        {{ return({'whole': true}) }}
    {%- endif -%}
    {%- set unread -%}
        model in ({{ names | join(', ') }}) and logged_at > (
            select read_at from ops._fact_rewrite_reads as reads
            where reads.reader = '{{ this.identifier }}' and reads.model = logged.model
        )
    {%- endset -%}
    {%- set logged = run_query(
        'select model, source, first_day, after_day from ops._fact_rewritten_days as logged where '
        ~ unread ~ ' order by model, source, first_day'
    ) -%}
    {%- set months = [] -%}
    {%- set terms = {} -%}
    {%- for model, source, first, after in logged.rows -%}
        {%- if first is none -%}
            {{ return({'whole': true}) }}
        {%- endif -%}
        {%- set ends = [after, before] | reject('none') | list -%}
        {%- set last = (ends | min) if ends else none -%}
        {%- if last is none or first < last -%}
            {%- for month in (month_starts(first, last) if before else []) if month not in months -%}
                {%- do months.append(month) -%}
            {%- endfor -%}
            {%- set term = in_day_range('date_day', first, last, 'date') -%}
            {%- do terms.setdefault(model, []).append(("(source = '" ~ source ~ "' and " ~ term ~ ')') if source else term) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set removed = run_query(
        'select distinct month from ops._fact_rewritten_customers as logged where ' ~ unread
    ) -%}
    {%- for label in removed.columns[0].values() -%}
        {%- set month = modules.datetime.date.fromisoformat(label ~ '-01') -%}
        {%- if month not in months and (before is none or month < before) -%}
            {%- do months.append(month) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set selects = ['select customer_id, month from ops._fact_rewritten_customers as logged where ' ~ unread] -%}
    {%- for model, model_terms in terms.items() -%}
        {%- do selects.append(
            'select customer_id, month from ' ~ by_name[model] ~ ' where ' ~ (model_terms | join(' or '))
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

{#- In a reader's transaction, once its run has used them (or built everything): this model
    has read the records of `facts` (relations) up to now; the records every reader of a
    fact has read go. -#}
{% macro read_fact_rewrites(facts) -%}
    {%- for fact in facts %}
    delete from ops._fact_rewrite_reads where reader = '{{ this.identifier }}' and model = '{{ fact.identifier }}';
    insert into ops._fact_rewrite_reads (reader, model, read_at)
    values ('{{ this.identifier }}', '{{ fact.identifier }}', {{ dbt.current_timestamp() }});
    {%- for log in ['_fact_rewritten_days', '_fact_rewritten_customers'] %}
    delete from ops.{{ log }}
    where model = '{{ fact.identifier }}'
        and logged_at <= (select min(read_at) from ops._fact_rewrite_reads where model = '{{ fact.identifier }}');
    {%- endfor %}
    {%- endfor %}
    select 1
{%- endmacro %}
