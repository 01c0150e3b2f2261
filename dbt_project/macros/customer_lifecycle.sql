{#- customer_lifecycle_month, incremental.

    A row depends on the customer's purchases (all of them: the first, the last and the next
    purchase), on the customer's current dimensions (dim_customer: version, tier, stage,
    signup channel), and on the last day of data: the as-of date of the month in progress, and
    whether a month's churn window (its as-of date + churn_days) has closed. So a daily run
    rewrites, in the *plan*:

      from_month     every row from the month in progress on: the month after the table's
                     last as-of date (a month that ended on it is complete);
      closing        every row of the older months whose churn window closes between the
                     table's last as-of date and the data's;
      customers      every row of the customers whose purchases the fact's runs rewrote
                     (fact_rewrites of fct_sales), or whose current dim_customer row now holds
                     other values of what the rows take from it (a scoring run, a new version,
                     a corrected closing date) than at the last run: a relation the pre-hook
                     fills. Those values as of the last run are kept in
                     cube_state.customer_lifecycle_month_customers.

    A run whose data ends before the table's, or that finds fct_sales built whole (or that
    has not read its records yet, or has no such state), rewrites every row (plan.whole). A
    full build has no plan. -#}

{#- The state: what the rows take from each customer's current dim_customer row. -#}
{% macro lifecycle_customers_state() -%}
    {{ return(api.Relation.create(
        database=this.database, schema='cube_state', identifier=this.identifier ~ '_customers', type='table'
    )) }}
{%- endmacro %}

{% macro lifecycle_customers_now() -%}
    select customer_id, customer_key, pyramid_tier, relationship_stage, signup_channel, closed_at
    from {{ ref('dim_customer') }}
    where is_current
{%- endmacro %}

{% macro customer_lifecycle_plan(churn_days) -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set rewrites = fact_rewrites([ref('fct_sales')]) -%}
    {%- set ends = run_query(
        'select (select max(as_of_date) from ' ~ this ~ '), (select max(date_day) from ' ~ ref('fct_sales') ~ ')'
    ).rows[0] -%}
    {%- set old_end, new_end = ends[0], ends[1] -%}
    {%- set state = lifecycle_customers_state() -%}
    {%- set has_state = adapter.get_relation(
        database=state.database, schema=state.schema, identifier=state.identifier
    ) is not none -%}
    {%- if rewrites.whole or not has_state or old_end is none or new_end is none or new_end < old_end -%}
        {{ return({'whole': true}) }}
    {%- endif -%}
    {%- set days = modules.datetime.timedelta(days=churn_days | int) -%}
    {%- set closing = [] -%}
    {%- for month in month_starts(month_of(old_end - days), next_month_of(month_of(new_end - days))) -%}
        {%- set month_end = next_month_of(month) - modules.datetime.timedelta(days=1) -%}
        {%- if old_end - days < month_end <= new_end - days -%}
            {%- do closing.append(month) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return({
        'whole': false,
        'from_month': month_of(old_end + modules.datetime.timedelta(days=1)),
        'closing': closing,
        'purchases_changed': rewrites.customer_months,
        'customers_relation': api.Relation.create(identifier=this.identifier ~ '__rewritten_customers'),
    }) }}
{%- endmacro %}

{#- SQL predicate: does the month (its first day in `column`) have every row rewritten? -#}
{% macro in_lifecycle_months(plan, column) -%}
    ({{ column }} >= {{ date_literal(plan.from_month) }}
    {%- if plan.closing %} or {{ in_months(plan.closing, column, 'month_start') }}{% endif %})
{%- endmacro %}

{#- Pre-hook: the plan's customers (against the state), then its rows deleted; the state
    written again and the records of fct_sales read. -#}
{% macro rewrite_customer_lifecycle(churn_days) -%}
    {%- set plan = customer_lifecycle_plan(churn_days) -%}
    {%- set state = lifecycle_customers_state() -%}
    {%- if plan is not none and plan.whole %}
    delete from {{ this }};
    {%- elif plan is not none %}
    {%- do run_query('drop table if exists ' ~ plan.customers_relation) -%}
    {%- do run_query(create_table_as(true, plan.customers_relation,
        'select customer_id from (' ~ plan.purchases_changed ~ ') as rewritten where customer_id is not null'
        ~ ' union ' ~ cube_differing('(' ~ lifecycle_customers_now() ~ ') as now', state, 'customer_id')
    )) -%}
    delete from {{ this }}
    where {{ in_lifecycle_months(plan, 'month_start') }}
        or customer_id in (select customer_id from {{ plan.customers_relation }});
    {%- endif %}
    create schema if not exists {{ state.include(identifier=false) }};
    create or replace table {{ state }} as {{ lifecycle_customers_now() }};
    {{ read_fact_rewrites([ref('fct_sales')]) }}
{%- endmacro %}
