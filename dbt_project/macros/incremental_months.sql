{#- Incremental periodic snapshots by month (fct_customer_month).

    A month-grained model cannot rewrite days: it rewrites whole months, every month of the
    keys (customers) whose history as a whole may have changed, and in older months the cells
    (customer months) whose facts changed. A run's *plan* says which:

      start        first day of the first month rewritten whole: the month in progress (the
                   month after the table's latest day; its rows' date_day moves with the
                   data), or earlier when the data's latest day lies before it (data that
                   went away), so the month in progress and every newer month are always
                   redone;
      months       older months rewritten whole: they received input rows loaded after the
                   table's high-water mark (a finance delivery, a corrected one);
      cell_months  older months, not rewritten whole, where the facts rewrote rows since the
                   model last ran (fact_rewrites); cell_sql selects the customer months there
                   whose rows the facts deleted or wrote;
      keys         the keys rewritten in every month (model-specific reasons, see the model), as
                   a relation: a temporary table the pre-hook fills, once per run; and the
                   cells, the table's rows in cell_months that cell_sql names, of other keys,
                   likewise (cells_relation).

    start, months and cell_months are read while the model compiles, before its pre-hook
    deletes anything (like incremental_bounds). The pre-hook then computes the keys and cells
    from the table's current rows and the new inputs, and deletes the plan's rows; the model
    writes them again (append). A full build (first run, --full-refresh) has no plan: the model
    computes every row.

    The helpers use plain SQL and dbt cross-database macros only, so another target needs
    nothing but delete support and temporary tables. -#}

{#- The first day of the month of a date (a datetime.date or 'YYYY-MM-DD'). -#}
{% macro month_of(day) -%}
    {%- set d = modules.datetime.date.fromisoformat((day | string)[:10]) -%}
    {{ return(d.replace(day=1)) }}
{%- endmacro %}

{#- The first day of the month after `month_start` (a datetime.date). -#}
{% macro next_month_of(month_start) -%}
    {{ return((month_start.replace(day=28) + modules.datetime.timedelta(days=4)).replace(day=1)) }}
{%- endmacro %}

{% macro date_literal(day) -%}
    cast('{{ day }}' as date)
{%- endmacro %}

{#- First month rewritten whole, as a datetime.date: the month after the table's latest day
    (date_day of this), or after the data's latest day (SQL last_day_sql) if that is older, so
    that no month between is left stale. A month that ends on the latest day is complete: on a
    month's first day, the month before is not rewritten whole. -#}
{% macro incremental_month_start(last_day_sql) -%}
    {%- set result = run_query('select (select max(date_day) from ' ~ this ~ '), (' ~ last_day_sql ~ ')') -%}
    {%- set candidates = [] -%}
    {%- for value in result.rows[0] if value is not none -%}
        {%- do candidates.append(month_of(value + modules.datetime.timedelta(days=1))) -%}
    {%- endfor -%}
    {{ return(candidates | min) }}
{%- endmacro %}

{#- SQL predicate: does the row fall in the plan's rewritten months? `column` holds a date
    (kind 'day': any day of the month, e.g. a fact's date_day), a month start (kind
    'month_start') or a 'YYYY-MM' label (kind 'label'). 'true' when there is no plan (a full
    build computes everything). The plan's keys are not part of it: see keys_in. -#}
{% macro in_rewritten_months(plan, column, kind='day') -%}
    {%- if plan is none -%}
        true
    {%- else -%}
        {%- set terms = [] -%}
        {%- if kind == 'label' -%}
            {%- do terms.append(column ~ " >= '" ~ plan.start.strftime('%Y-%m') ~ "'") -%}
        {%- else -%}
            {%- do terms.append(column ~ ' >= ' ~ date_literal(plan.start)) -%}
        {%- endif -%}
        {%- if plan.months -%}
            {%- do terms.append(in_months(plan.months, column, kind)) -%}
        {%- endif -%}
        ({{ terms | join(' or ') }})
    {%- endif -%}
{%- endmacro %}

{#- SQL predicate: does `column` (kinds as for in_rewritten_months) fall in one of `months`
    (datetime.date month starts)? -#}
{% macro in_months(months, column, kind='day') -%}
    {%- set terms = [] -%}
    {%- for month in months -%}
        {%- if kind == 'label' -%}
            {%- do terms.append(column ~ " = '" ~ month.strftime('%Y-%m') ~ "'") -%}
        {%- elif kind == 'day' -%}
            {%- do terms.append(
                '(' ~ column ~ ' >= ' ~ date_literal(month) ~ ' and ' ~ column ~ ' < '
                ~ date_literal(next_month_of(month)) ~ ')'
            ) -%}
        {%- else -%}
            {%- do terms.append(column ~ ' = ' ~ date_literal(month)) -%}
        {%- endif -%}
    {%- endfor -%}
    ({{ (terms | join(' or ')) if terms else 'false' }})
{%- endmacro %}

{#- SQL predicate: is (key_column, month_column: a 'YYYY-MM' label) one of the plan's cells?
    'false' without cells. -#}
{% macro cells_in(plan, key_column, month_column='month') -%}
    {%- if plan is none or not plan.cell_months -%}
        false
    {%- else -%}
        ({{ key_column }}, {{ month_column }}) in (select {{ plan.key_column }}, month from {{ plan.cells_relation }})
    {%- endif -%}
{%- endmacro %}

{#- SQL predicate: is key_column one of the plan's keys? 'false' without a plan. -#}
{% macro keys_in(plan, key_column) -%}
    {%- if plan is none -%}
        false
    {%- else -%}
        {{ key_column }} in (select {{ plan.key_column }} from {{ plan.keys_relation }})
    {%- endif -%}
{%- endmacro %}

{#- The rows of `relation` a run needs: those in the rewritten months, every row of the plan's
    keys, and the rows of its cells (by the relation's 'YYYY-MM' column `month`), as branches
    so that each filter reaches the scan (an OR of a date range and a key lookup would read
    the whole table). `where`: a further filter on each. -#}
{% macro select_rewritten(plan, relation, column, kind='day', key_column=none, where='true') -%}
    select * from {{ relation }}
    where {{ where }}
        and {{ in_rewritten_months(plan, column, kind) }}
    {%- if plan is not none and key_column %}
    union all
    select * from {{ relation }}
    where {{ where }}
        and {{ keys_in(plan, key_column) }}
        and not {{ in_rewritten_months(plan, column, kind) }}
    {%- if plan.cell_months %}
    union all
    select * from {{ relation }}
    where {{ where }}
        and {{ in_months(plan.cell_months, column, kind) }}
        and {{ cells_in(plan, key_column) }}
    {%- endif %}
    {%- endif %}
{%- endmacro %}

{#- A temporary relation of the run (connection-local, no schema): its keys ('keys'), or an
    input's rows for those keys ('finance', ...). -#}
{% macro rewrite_relation(name) -%}
    {{ return(api.Relation.create(identifier=this.identifier ~ '__rewritten_' ~ name)) }}
{%- endmacro %}

{#- Pre-hook: fill the plan's keys relation from `keys_sql` (a select of plan.key_column,
    computed against the table's current rows) and its cells relation (the table's rows in
    cell_months that plan.cell_sql names, of other keys); run each of `copies` ({'name', 'sql'}:
    rows of the table the model needs back, into rewrite_relation(name)); copy each of
    `extracts` ({'name', 'relation', 'column', 'kind'}: an input, and its month column as for
    in_rewritten_months) for those keys outside the rewritten months, and for the cells, into
    rewrite_relation(name); then delete the plan's rows. The copies take the keys as a literal
    list (up to `max_listed` keys), which reaches a view's scan where a join would not: the
    model reads them instead of the input. -#}
{% macro rewrite_months(plan, keys_sql, copies=[], extracts=[], month_start_column='month_start', max_listed=20000) -%}
    {%- if plan is not none -%}
        {%- do run_query('drop table if exists ' ~ plan.keys_relation) -%}
        {%- do run_query(create_table_as(true, plan.keys_relation, keys_sql)) -%}
        {%- if plan.cell_months -%}
            {%- do run_query('drop table if exists ' ~ plan.cells_relation) -%}
            {%- do run_query(create_table_as(true, plan.cells_relation,
                'select ' ~ plan.key_column ~ ', month, ' ~ month_start_column ~ ' from ' ~ this
                ~ ' where ' ~ in_months(plan.cell_months, month_start_column, 'month_start')
                ~ ' and not ' ~ keys_in(plan, plan.key_column)
                ~ ' and (' ~ plan.key_column ~ ', month) in (' ~ plan.cell_sql ~ ')'
            )) -%}
        {%- endif -%}
        {%- for copy in copies -%}
            {%- do run_query('drop table if exists ' ~ rewrite_relation(copy.name)) -%}
            {%- do run_query(create_table_as(true, rewrite_relation(copy.name), copy.sql)) -%}
        {%- endfor -%}
        {%- set listed = none -%}
        {%- if extracts -%}
            {%- set keys = run_query('select ' ~ plan.key_column ~ ' from ' ~ plan.keys_relation).columns[0].values() -%}
            {%- if keys | length <= max_listed -%}
                {%- set quoted = [] -%}
                {%- for key in keys -%}
                    {%- do quoted.append("'" ~ (key | string | replace("'", "''")) ~ "'") -%}
                {%- endfor -%}
                {%- set listed = quoted | join(', ') if quoted else 'null' -%}
            {%- endif -%}
        {%- endif -%}
        {%- for extract in extracts -%}
            {%- set relation = rewrite_relation(extract.name) -%}
            {%- set key_filter = (plan.key_column ~ ' in (' ~ listed ~ ')') if listed is not none
                else keys_in(plan, plan.key_column) -%}
            {%- set cells = '' -%}
            {%- if plan.cell_months -%}
                {%- set cells = ' union all select * from ' ~ extract.relation
                    ~ ' where ' ~ in_months(plan.cell_months, extract.column, extract.kind)
                    ~ ' and ' ~ cells_in(plan, plan.key_column) -%}
            {%- endif -%}
            {%- do run_query('drop table if exists ' ~ relation) -%}
            {%- do run_query(create_table_as(true, relation,
                'select * from ' ~ extract.relation ~ ' where ' ~ key_filter
                ~ ' and not ' ~ in_rewritten_months(plan, extract.column, extract.kind) ~ cells
            )) -%}
        {%- endfor -%}
        delete from {{ this }}
        where {{ in_rewritten_months(plan, month_start_column, 'month_start') }}
            or {{ keys_in(plan, plan.key_column) }}
            or {{ cells_in(plan, plan.key_column) }}
    {%- endif -%}
{%- endmacro %}


{#- fct_customer_month ------------------------------------------------------------------ -#}

{#- Each customer's span of months, as (customer_id, first_day, closed_day): months run from
    the month of first_day (signup, or an earlier first activity) to the last month with data,
    or for a closed account to the month of closed_day (its closing, or a later last
    activity: a return). Shared by the model and its incremental plan, so both agree.
    With `only` (SQL selecting customer_ids), activity is read for those customers only: the
    others get the span their versions give, which the caller must know is enough. -#}
{% macro customer_month_spans(customer_versions, sales, contacts, feedback, only=none) -%}
    {%- set restrict = ('and customer_id in (' ~ only ~ ')') if only else '' -%}
    select
        customer_bounds.customer_id,
        case
            when activity_bounds.first_day < customer_bounds.first_day then activity_bounds.first_day
            else customer_bounds.first_day
        end as first_day,
        case
            when customer_bounds.closed_day is null then null
            when activity_bounds.last_day > customer_bounds.closed_day then activity_bounds.last_day
            else customer_bounds.closed_day
        end as closed_day
    from (
        select
            customer_id,
            min(coalesce(signup_date, cast(valid_from as date))) as first_day,
            max(case
                when is_current and status = 'closed' then coalesce(closed_at, cast(valid_from as date))
            end) as closed_day
        from {{ customer_versions }}
        group by customer_id
    ) as customer_bounds
    left join (
        select
            customer_id,
            min(date_day) as first_day,
            max(date_day) as last_day
        from (
            select customer_id, date_day from {{ sales }} where customer_id is not null {{ restrict }}
            union all
            select customer_id, date_day from {{ contacts }} where customer_id is not null {{ restrict }}
            union all
            select customer_id, date_day from {{ feedback }} where customer_id is not null {{ restrict }}
        ) as activity
        group by customer_id
    ) as activity_bounds
        on activity_bounds.customer_id = customer_bounds.customer_id
{%- endmacro %}

{#- Customers whose span the model must compute from their activity: closed accounts (a
    return extends the span), the plan's keys (every month rewritten), and customers who
    signed up after the first rewritten month (activity before signup can start the span
    earlier). Any other customer signed up by the first rewritten month, so every rewritten
    month is in its span whatever its activity. -#}
{% macro customer_month_span_customers(plan, customer_versions) -%}
    {%- set first = ([plan.start] + plan.months) | min -%}
    select customer_id
    from {{ customer_versions }}
    group by customer_id
    having max(case when is_current and status = 'closed' then 1 else 0 end) = 1
        or min(coalesce(signup_date, cast(valid_from as date))) >= {{ date_literal(next_month_of(first)) }}
        or {{ keys_in(plan, 'customer_id') }}
{%- endmacro %}

{#- The last day with data: months run up to the one holding it. -#}
{% macro customer_month_last_day(customer_versions, sales, contacts) -%}
    select max(last_day) as last_day from (
        select max(date_day) as last_day from {{ sales }}
        union all
        select max(date_day) from {{ contacts }}
        union all
        select max(cast(valid_from as date)) from {{ customer_versions }}
    ) as data_days
{%- endmacro %}

{#- The facts fct_customer_month reads. -#}
{% macro customer_month_facts() -%}
    {{ return([ref('fct_sales'), ref('fct_contacts'), ref('fct_feedback')]) }}
{%- endmacro %}

{#- The rewrite plan of fct_customer_month (see the top of this file), or none for a full
    build. `months` are older months with finance rows loaded after the high-water mark (or
    a finance correction since: raw._replaced_days); `cell_months` those where the facts
    rewrote rows (fact_rewrites). The keys (customer_month_keys) are the customers rewritten
    in every month. -#}
{% macro customer_month_plan() -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
    {%- if '_loaded_at' not in columns or 'date_day' not in columns -%}
        {{ exceptions.raise_compiler_error(
            this ~ ' predates incremental months (no date_day/_loaded_at columns): rebuild it once with'
            ~ ' dbt build --full-refresh --select fct_customer_month'
        ) }}
    {%- endif -%}
    {%- set plan = {
        'start': modules.datetime.date(1900, 1, 1),
        'months': [],
        'cell_months': [],
        'high_water': '1900-01-01 00:00:00',
        'keys_relation': rewrite_relation('keys'),
        'cells_relation': rewrite_relation('cells'),
        'key_column': 'customer_id',
    } -%}
    {%- set bounds = incremental_bounds() -%}
    {%- if not bounds -%}
        {{ return(plan) }}
    {%- endif -%}
    {%- set facts = customer_month_facts() -%}
    {%- set start = incremental_month_start(
        customer_month_last_day(ref('int_customers_versioned'), facts[0], facts[1])
    ) -%}
    {%- set rewrites = fact_rewrites(facts, start) -%}
    {%- if rewrites.whole -%}
        {#- a fact was built whole: so is every month -#}
        {{ return(plan) }}
    {%- endif -%}
    {%- set finance = {
        'relation': source('raw', 'finance_monthly'),
        'date': dbt.concat(['month', "'-01'"]),
        'tag': 'finance_monthly',
    } -%}
    {%- set months = [] -%}
    {%- for tag, day in tagged_dates_loaded_after([finance], bounds.high_water, start)
        if tag == finance.tag and month_of(day) not in months -%}
        {%- do months.append(month_of(day)) -%}
    {%- endfor -%}
    {%- set cell_months = [] -%}
    {%- for month in rewrites.months if month not in months -%}
        {%- do cell_months.append(month) -%}
    {%- endfor -%}
    {%- do plan.update({
        'start': start,
        'months': months | sort,
        'cell_months': cell_months,
        'cell_sql': rewrites.customer_months,
        'high_water': bounds.high_water,
    }) -%}
    {{ return(plan) }}
{%- endmacro %}

{#- The customers of a run whose every month is rewritten, because their rows can change in
    any month:
      - a customer version loaded after the high-water mark (a new version re-keys months,
        a corrected signup or closing date moves the span);
      - a loyalty-points entry loaded after it (the balance is cumulative: an entry, or a
        re-delivered entry moved to another day, changes every later month);
      - a span below the plan's start that no longer matches the table's rows: a return
        after the closing month, activity before signup, or such activity corrected away;
      - with `check_balances` (points_corrected_after): a points balance below the plan's
        start that no longer matches the entries, e.g. an entry that a corrected file dropped
        (its deleted rows name no customer) or that moved to another customer;
      - with `check_keys` (after a customers correction): a row keyed to a customer version
        that is gone (a corrected file dropped it, and names no customer).
    Everything else in an older month depends only on that month's facts and finance rows,
    which the plan's months cover. Must run before the table's rows are deleted. -#}
{% macro customer_month_keys(plan, check_balances=false, check_keys=false) -%}
    {%- set below = date_literal(plan.start) -%}
    {%- set last_below = 'cast(' ~ dbt.dateadd('month', -1, below) ~ ' as date)' -%}
    {%- set high_water = "cast('" ~ plan.high_water ~ "' as timestamp)" -%}
    with

    versions as (
        select * from {{ ref('int_customers_versioned') }}
    ),

    spans as (
        {{ customer_month_spans('versions', ref('fct_sales'), ref('fct_contacts'), ref('fct_feedback')) }}
    ),

    new_spans as (
        select
            customer_id,
            cast({{ dbt.date_trunc('month', 'first_day') }} as date) as first_month,
            case
                when closed_day is not null and closed_day < {{ last_below }}
                    then cast({{ dbt.date_trunc('month', 'closed_day') }} as date)
                else {{ last_below }}
            end as last_month
        from spans
    ),

    new_below as (
        select * from new_spans where first_month <= last_month
    ),

    old_below as (
        select
            customer_id,
            min(month_start) as first_month,
            max(month_start) as last_month
            {%- if check_balances %},
            {{ last_by('points_balance', ['month_start']) }} as last_balance
            {%- endif %}
        from {{ this }}
        where month_start < {{ below }}
        group by customer_id
    ),
    {%- if check_balances %}

    -- A month's balance is the sum of the entries before the next month (earlier ones than the
    -- customer's first month included).
    points_below as (
        select
            old_below.customer_id,
            sum(entries.points) as points
        from old_below
        inner join {{ ref('stg_loyalty_points__entries') }} as entries
            on entries.customer_id = old_below.customer_id
            and entries.entry_at < cast({{ dbt.dateadd('month', 1, 'old_below.last_month') }} as timestamp)
        where entries.entry_at < cast({{ below }} as timestamp)
        group by old_below.customer_id
    ),

    drifted as (
        select old_below.customer_id
        from old_below
        left join points_below
            on points_below.customer_id = old_below.customer_id
        where old_below.last_balance <> coalesce(points_below.points, 0)
    ),
    {%- endif %}

    moved as (
        select coalesce(new_below.customer_id, old_below.customer_id) as customer_id
        from new_below
        full outer join old_below
            on old_below.customer_id = new_below.customer_id
        where new_below.customer_id is null
            or old_below.customer_id is null
            or new_below.first_month <> old_below.first_month
            or new_below.last_month <> old_below.last_month
    )

    select customer_id from moved
    {%- if check_balances %}
    union
    select customer_id from drifted
    {%- endif %}
    {%- if check_keys %}
    union
    select customer_id from {{ this }}
    where customer_key <> -1 and customer_key not in (select customer_key from versions)
    {%- endif %}
    union
    select customer_id from versions where _loaded_at > {{ high_water }}
    union
    select customer_id from {{ source('raw', 'loyalty_points') }}
    where _loaded_at > {{ high_water }} and customer_id is not null
{%- endmacro %}

{#- Whether loyalty points entries may have left a customer since `high_water`: a points file
    was corrected (the rows it replaced are deleted, and name no customer: raw._replaced_days
    holds their days), or an entry was delivered again (its earlier version may name another
    customer). -#}
{% macro points_corrected_after(high_water) -%}
    {%- if replaced_since('loyalty_points', high_water) -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set after = "cast('" ~ high_water ~ "' as timestamp)" -%}
    {%- set entries = source('raw', 'loyalty_points') -%}
    {%- set query -%}
        select exists (
            select 1 from {{ entries }}
            where _loaded_at <= {{ after }}
                and entry_id in (select entry_id from {{ entries }} where _loaded_at > {{ after }})
        )
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0]) }}
{%- endmacro %}

{#- fct_customer_month's pre-hook. Besides the keys, the cells and their finance rows, it keeps
    the points balances the deleted rows had in older months and in the month before the plan's
    start, for customers outside the keys (whose entries did not change): a rewritten month's
    balance is then its old balance (older months) or the balance before the start plus the
    entries since, and the model need not add up every customer's whole points history. It
    consumes the facts' rewrite records, which this run's plan has read. -#}
{% macro rewrite_customer_months() -%}
    {%- set plan = customer_month_plan() -%}
    {%- if plan is not none -%}
        {%- set before_start = 'cast(' ~ dbt.dateadd('month', -1, date_literal(plan.start)) ~ ' as date)' -%}
        {{ rewrite_months(plan, customer_month_keys(
            plan, points_corrected_after(plan.high_water), replaced_since('customers', plan.high_water)
        ), copies=[
            {
                'name': 'balances',
                'sql': 'select customer_id, month_start, points_balance from ' ~ this
                    ~ ' where month_start < ' ~ date_literal(plan.start)
                    ~ ' and (month_start = ' ~ before_start
                    ~ ' or ' ~ in_months(plan.months, 'month_start', 'month_start')
                    ~ ' or ' ~ cells_in(plan, 'customer_id') ~ ')',
            },
        ], extracts=[
            {
                'name': 'finance',
                'relation': ref('stg_finance_monthly__customer_months'),
                'column': 'month',
                'kind': 'label',
            },
        ]) }};
    {%- endif %}
    {{ read_fact_rewrites(customer_month_facts()) }}
{%- endmacro %}
