{{ cube_by_difference_config('cube_contacts_spec') }}
{#-
    Grain: one row per grouping set × combination of kept dimension values. Kept by difference
    (macros/cubes/cube_difference.sql) over its rows (cube_contacts_spec). The sums roll up by
    GROUPING SETS, the distinct customers by one GROUP BY per set (cube_signed_per_set).
-#}
{%- set dimensions = ['month', 'contact_channel', 'reason', 'resolution', 'pyramid_tier'] -%}
{%- set grouping_sets = [
    [],
    ['month'], ['contact_channel'], ['reason'], ['resolution'], ['pyramid_tier'],
    ['month', 'contact_channel'], ['month', 'reason'], ['month', 'resolution'], ['month', 'pyramid_tier'],
    ['contact_channel', 'reason'], ['contact_channel', 'resolution'], ['contact_channel', 'pyramid_tier'],
    ['reason', 'resolution'], ['reason', 'pyramid_tier'],
    ['month', 'contact_channel', 'reason'], ['month', 'contact_channel', 'resolution'],
    ['month', 'contact_channel', 'pyramid_tier'],
    dimensions,
] -%}

with

{{ cube_signed_rows_ctes() }}

sums as (
    select
        {{ dimensions | join(', ') }},
        {{ cube_grouping_flags(dimensions) }}
        sum(sign * contacts) as contacts,
        sum(sign * timed_contacts) as timed_contacts,
        sum(sign * duration_s) as duration_s,
        sum(sign * cost_krw) as cost_krw,
        sum(sign * complaints) as complaints,
    from signed_rows
    group by {{ cube_grouping_sets(grouping_sets) }}
),

customers_per_set as (
    {{ cube_signed_per_set(dimensions, grouping_sets, {'customers': cube_distinct('customer_id')}) }}
),

aggregated as (
    select
        sums.*,
        customers_per_set.customers,
    from sums
    left join customers_per_set
        on {{ cube_per_set_matches('customers_per_set', 'sums', dimensions) }}
),

cells as (
    select
        {{ cube_dimension_columns(dimensions) }}
        contacts,
        customers,
        timed_contacts,
        duration_s,
        cost_krw,
        complaints,
    from aggregated
),

merged as (
    {{ cube_merged(
        'cells',
        cube_cell_columns(dimensions),
        ['contacts', 'customers', 'timed_contacts', 'duration_s', 'cost_krw', 'complaints'],
        'contacts',
    ) }}
),

final as (
    select
        {%- for column in cube_cell_columns(dimensions) %}
        {{ column }},
        {%- endfor %}
        cast(contacts as bigint) as contacts,
        cast(customers as bigint) as customers,
        cast(timed_contacts as bigint) as timed_contacts,
        cast(coalesce(duration_s, 0) as bigint) as duration_s,
        round(duration_s / nullif(timed_contacts, 0), 1) as avg_duration_s,
        cast(coalesce(cost_krw, 0) as bigint) as cost_krw,
        cast(complaints as bigint) as complaints,
        round(complaints / nullif(contacts, 0), 4) as complaint_rate,
    from merged
)

select * from final
