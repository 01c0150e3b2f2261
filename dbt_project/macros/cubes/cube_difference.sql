{#-
    Cubes kept by difference (cube_sales, cube_contacts). Owned by the cubes part of crmwh.

    Every measure of such a cube adds up over disjoint sets of customers: its sums, and its
    distinct customers too. So the cube's input is grouped by *unit* (the customer; for rows
    without a customer, their month) and a day's run recomputes only the units whose rows
    changed:

        new cube = old cube + cube(new rows of the changed units) - cube(their old rows)

    A cube's *spec* (macros/cubes/cube_specs.sql) names its `rows` macro (its input, one row
    per unit × finest cell with the measures summed, for every unit or for the units of a
    relation), its `facts` model (with customer_id, month, date_day, _loaded_at) and its
    `lookups`: the dimension models its rows take dimensions from, by the facts' key column
    ({name: {model, key, dimensions: {cube dimension: model column}}}).

    The cube keeps its *state* in schema cube_state: `<cube>_rows`, its rows as of the last
    run (with last_day and loaded_at, the latest date_day and _loaded_at of their facts), and
    `<cube>_<lookup>`, each lookup's key and dimensions as of the last run.

    A run by difference (the cube and its state exist, no --full-refresh):
    1. pre-hook cube_prepare: the candidate units, those whose rows may have changed, each
       with the first day of its facts to recompute (`recompute_from`):
       - whose facts the facts' runs rewrote since the cube last ran (macros/fact_rewrites.sql:
         the units of the rows they deleted, and of the rows now on the days they rewrote),
         from the first day of the first month rewritten on, since the rows' cells are
         months (all units, all of their rows, after a full build of the facts);
       - with facts whose lookup row now holds other dimensions (a scoring run moved the
         customer's tier, a product changed category): all of them;
       then their rows from `recompute_from` on, recomputed and as in the state, the
       *changed* units (the candidates whose recomputed rows differ from their state rows),
       and the changed units' *kept* rows, their state rows of earlier months (temporary
       tables);
    2. pre-hook cube_write_state, in the model's transaction: the changed units' rows in the
       state are replaced by their new and kept rows, the lookups written again, and the
       facts' records marked read (also in a build without a state);
    3. the model aggregates the changed units' new rows with sign +1 and their old rows with
       sign -1 (cube_signed_rows, cube_distinct), adds the result to its cells (cube_merged)
       and replaces the table's rows (delete+insert on grouping_id: every cell). A customer's
       distinct count in a set that rolls month up needs all of the customer's rows, so
       there the kept rows come in too, with both signs (cube_signed_per_set); they lie in
       months before their unit's new and old rows, so in the sums and in the sets that keep
       month they would only cancel (at L they were most of the rows aggregated);
    4. post-hook cube_drop_temps drops the temporary tables.

    So a day's run recomputes its candidates' rows of the months the facts rewrote, not their
    whole histories.

    Without a state (first build, --full-refresh, a cube built before the state existed)
    cube_prepare writes every unit's rows into `<cube>_rows_next`, cube_write_state puts it in
    the state's place, and the model aggregates them: the rows are computed once.

    cube_prepare is a hook with `transaction: false` because DuckDB reads rows written in an
    open transaction far slower than committed ones: at L, a full build of cube_contacts took
    91 s with its rows written in the model's transaction, 64-68 s without (cube_sales 67-69 s,
    49-51 s). In a run by difference dbt-duckdb has already begun the transaction when it
    looked the state up (cube_by_difference), so cube_prepare runs in it; its tables are
    small there. Either way it writes nothing other runs read (temporary tables,
    `<cube>_rows_next`), and the state and the cube are written in the model's transaction: a
    failed run changes neither. The bench's floors put the rows' SQL in place of the state
    (warehouse.bench.cubes_over_facts). A change of a rows macro needs a --full-refresh, as
    for every incremental model.
-#}

{#- Config of a cube kept by difference; `spec`: the name of its spec macro. -#}
{% macro cube_by_difference_config(spec) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='grouping_id',
        on_schema_change='fail',
        schema='cubes',
        pre_hook=[
            {'sql': '{{ cube_prepare(' ~ spec ~ '()) }}', 'transaction': False},
            '{{ cube_write_state(' ~ spec ~ '()) }}',
        ],
        post_hook='{{ cube_drop_temps() }}',
    ) }}
{%- endmacro %}

{% macro cube_state(part='rows') -%}
    {{ return(api.Relation.create(
        database=this.database, schema='cube_state', identifier=this.identifier ~ '_' ~ part, type='table'
    )) }}
{%- endmacro %}

{#- True when this run goes by difference: an incremental run of a cube whose state exists. -#}
{% macro cube_by_difference() -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set state = cube_state() -%}
    {{ return(adapter.get_relation(
        database=state.database, schema=state.schema, identifier=state.identifier
    ) is not none) }}
{%- endmacro %}

{#- A fact row's unit: its customer, or for rows without one, their month. -#}
{% macro cube_unit(customer_id='customer_id', month='month') -%}
    coalesce({{ customer_id }}, {{ dbt.concat(["'~'", month]) }})
{%- endmacro %}

{#- The temporary tables of a run by difference. -#}
{% macro cube_temp(name) -%}
    {{ this.identifier }}__{{ name }}
{%- endmacro %}

{#- A lookup's key and dimensions, as the rows take them. -#}
{% macro cube_lookup_select(lookup) -%}
    select
        {{ lookup.key }},
        {%- for dim, column in lookup.dimensions.items() %}
        {{ cube_dim(column, dim) }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref(lookup.model) }}
{%- endmacro %}

{#- The distinct `column` values of the rows that are in one of relations `a` and `b` but not in
    the other. -#}
{% macro cube_differing(a, b, column) -%}
    select {{ column }} from (select * from {{ a }} except select * from {{ b }}) as added
    union
    select {{ column }} from (select * from {{ b }} except select * from {{ a }}) as removed
{%- endmacro %}

{#- A rows macro's facts: those of `units` (a relation with columns unit and recompute_from)
    from each unit's recompute_from on, or all of them. -#}
{% macro cube_facts(model, units) -%}
    select facts.* from {{ ref(model) }} as facts
    {%- if units %}
    inner join {{ units }} as units
        on units.unit = {{ cube_unit('facts.customer_id', 'facts.month') }}
        and facts.date_day >= units.recompute_from
    {%- endif %}
{%- endmacro %}

{#- Pre-hook (`transaction: false`): by difference, the candidate units, their recomputed, old
    and kept rows and the changed units; else every unit's rows, into `<cube>_rows_next`. dbt
    renders hooks when it parses, so the refs here (the facts, the lookups) are the cube's
    dependencies: its SQL reads only the state. -#}
{% macro cube_prepare(spec) -%}
    {%- set state = cube_state() -%}
    {%- if cube_by_difference() -%}
    {%- set rewrites = fact_rewrites([ref(spec.facts)]) -%}
    create or replace temporary table {{ cube_temp('candidates') }} as
    with

    state_rows as (
        select * from {{ state }}
    ),

    facts as (
        select * from {{ ref(spec.facts) }}
    ),
    {%- for name, lookup in spec.lookups.items() %}

    {{ name }}_now as (
        {{ cube_lookup_select(lookup) }}
    ),

    {{ name }}_then as (
        select * from {{ cube_state(name) }}
    ),

    {{ name }}_changed as (
        {{ cube_differing(name ~ '_now', name ~ '_then', lookup.key) }}
    ),
    {%- endfor %}

    {#- A candidate's first day to recompute: the first day of the first month the facts rewrote
        its rows in, or for a customer whose lookup row changed the beginning of time (all of
        the customer's rows). #}
    final as (
        select unit, min(recompute_from) as recompute_from
        from (
            {%- if rewrites.whole %}
            select {{ cube_unit() }} as unit, cast({{ beginning_of_time() }} as date) as recompute_from from facts
            union all
            select unit, cast({{ beginning_of_time() }} as date) from state_rows
            {%- else %}
            select
                {{ cube_unit() }} as unit,
                cast({{ dbt.concat(['month', "'-01'"]) }} as date) as recompute_from
            from ({{ rewrites.customer_months }}) as rewritten
            {%- endif %}
            {%- for name, lookup in spec.lookups.items() %}
            union all
            select {{ cube_unit() }} as unit, cast({{ beginning_of_time() }} as date) from facts
            where facts.{{ lookup.key }} in (select {{ lookup.key }} from {{ name }}_changed)
            {%- endfor %}
        ) as units
        group by unit
    )

    select * from final;

    create or replace temporary table {{ cube_temp('new_rows') }} as
    {{ spec.rows(cube_temp('candidates')) }};

    create or replace temporary table {{ cube_temp('old_rows') }} as
    select state_rows.* from {{ state }} as state_rows
    inner join {{ cube_temp('candidates') }} as candidates
        on candidates.unit = state_rows.unit and state_rows.last_day >= candidates.recompute_from;

    create or replace temporary table {{ cube_temp('changed') }} as
    {{ cube_differing(cube_temp('new_rows'), cube_temp('old_rows'), 'unit') }};

    create or replace temporary table {{ cube_temp('kept') }} as
    select state_rows.* from {{ state }} as state_rows
    inner join {{ cube_temp('candidates') }} as candidates
        on candidates.unit = state_rows.unit and state_rows.last_day < candidates.recompute_from
    where state_rows.unit in (select unit from {{ cube_temp('changed') }})
    {%- else %}
    create schema if not exists {{ state.include(identifier=false) }};
    create or replace table {{ cube_state('rows_next') }} as
    {{ spec.rows(none) }}
    {%- endif %}
{%- endmacro %}

{#- Pre-hook in the model's transaction: by difference, the changed units' rows replace theirs
    in the state; else `<cube>_rows_next` becomes the state. Then the lookups, written again. -#}
{% macro cube_write_state(spec) -%}
    {%- set state = cube_state() -%}
    {%- if cube_by_difference() -%}
    delete from {{ state }} where unit in (select unit from {{ cube_temp('changed') }});
    insert into {{ state }}
    select * from {{ cube_temp('new_rows') }} where unit in (select unit from {{ cube_temp('changed') }})
    union all
    select * from {{ cube_temp('kept') }};
    {%- else %}
    drop table if exists {{ state }};
    alter table {{ cube_state('rows_next') }} rename to {{ state.identifier }};
    {%- endif %}
    {%- for name, lookup in spec.lookups.items() %}
    create or replace table {{ cube_state(name) }} as
    {{ cube_lookup_select(lookup) }};
    {%- endfor %}
    {{ read_fact_rewrites([ref(spec.facts)]) }}
{%- endmacro %}

{#- The rows the model aggregates, with their sign: by difference, the changed units' new rows
    (+1) and old rows (-1); else every unit's rows (+1), as the pre-hook wrote them. -#}
{% macro cube_signed_rows() -%}
    {%- if cube_by_difference() -%}
    select 1 as sign, * from {{ cube_temp('new_rows') }}
    where unit in (select unit from {{ cube_temp('changed') }})
    union all
    select -1 as sign, * from {{ cube_temp('old_rows') }}
    where unit in (select unit from {{ cube_temp('changed') }})
    {%- else -%}
    select 1 as sign, * from {{ cube_state() }}
    {%- endif -%}
{%- endmacro %}

{#- The cube's CTEs of signed rows: `signed_rows` (cube_signed_rows) and, by difference,
    `signed_rows_across`: those and the changed units' kept rows with both signs, for the sets
    that roll month up (cube_signed_per_set). -#}
{% macro cube_signed_rows_ctes() -%}
signed_rows as {{ cube_signed_rows_cte() }} (
    {{ cube_signed_rows() }}
),
{%- if cube_by_difference() %}

signed_rows_across as (
    select * from signed_rows
    union all
    select 1 as sign, * from {{ cube_temp('kept') }}
    union all
    select -1 as sign, * from {{ cube_temp('kept') }}
),
{%- endif %}
{%- endmacro %}

{#- cube_per_set over the signed rows (cube_signed_rows_ctes): the sets that keep month over
    `signed_rows`, the sets that roll it up over `signed_rows_across` by difference. -#}
{% macro cube_signed_per_set(dimensions, sets, measures) -%}
    {%- set within = [] -%}
    {%- set across = [] -%}
    {%- for set in sets -%}
        {%- do (within if 'month' in set else across).append(set) -%}
    {%- endfor -%}
    {%- set parts = [] -%}
    {%- for relation, part_sets in [
        ('signed_rows', within), ('signed_rows_across' if cube_by_difference() else 'signed_rows', across)
    ] if part_sets -%}
        {%- do parts.append(cube_per_set(relation, dimensions, part_sets, measures)) -%}
    {%- endfor -%}
    {{ parts | join('\n    union all') }}
{%- endmacro %}

{#- What the signed rows' CTE is declared as (cube_signed_rows_ctes): the cube reads it once
    for its sums and once per set for its distinct customers (cube_signed_per_set), and by
    difference once more in `signed_rows_across`. DuckDB computes a CTE read more than once
    first, into memory: right for the few rows of a run by difference, but a full build's are
    the state itself, a table, which DuckDB would copy whole (at L, cube_contacts' aggregate
    took 38-44 s so, 34-35 s reading the table each time), so there the CTE stays inline. -#}
{% macro cube_signed_rows_cte() -%}
    {%- if not cube_by_difference() -%}
    {{ adapter.dispatch('inline_cte', 'crmwh')() }}
    {%- endif -%}
{%- endmacro %}

{% macro duckdb__inline_cte() -%}
    not materialized
{%- endmacro %}

{% macro default__inline_cte() -%}
{%- endmacro %}

{#- Distinct values of `expression` (a customer) over the signed rows: the new rows' count
    less the old rows' (a unit's customers are its own, so counts add up over units). -#}
{% macro cube_distinct(expression) -%}
    count(distinct case when sign = 1 then {{ expression }} end)
    {%- if cube_by_difference() %}
        - count(distinct case when sign = -1 then {{ expression }} end)
    {%- endif -%}
{%- endmacro %}

{#- The columns that name a cube's cell: its dimensions, grouping_level, kept_dimensions and
    grouping_id (cube_dimension_columns). -#}
{% macro cube_cell_columns(dimensions) -%}
    {{ return(dimensions + ['grouping_level', 'kept_dimensions', 'grouping_id']) }}
{%- endmacro %}

{#- The cube's cells: by difference, the table's cells plus the `cells` relation's
    differences (summed by `keys`; a cell whose `present` measure falls to 0 has no rows left
    and goes); else `cells` itself. -#}
{% macro cube_merged(cells, keys, measures, present) -%}
    {%- if cube_by_difference() -%}
    select
        {{ keys | join(', ') }},
        {%- for measure in measures %}
        sum({{ measure }}) as {{ measure }}{{ ',' if not loop.last }}
        {%- endfor %}
    from (
        select {{ keys | join(', ') }}, {{ measures | join(', ') }} from {{ this }}
        union all
        select {{ keys | join(', ') }}, {{ measures | join(', ') }} from {{ cells }}
    ) as cells
    group by {{ keys | join(', ') }}
    having sum({{ present }}) <> 0
    {%- else -%}
    select * from {{ cells }}
    {%- endif -%}
{%- endmacro %}

{#- Post-hook: the temporary tables of a run by difference dropped. -#}
{% macro cube_drop_temps() -%}
    {%- for name in ['candidates', 'new_rows', 'old_rows', 'changed', 'kept'] %}
    drop table if exists {{ cube_temp(name) }};
    {%- endfor %}
{%- endmacro %}
