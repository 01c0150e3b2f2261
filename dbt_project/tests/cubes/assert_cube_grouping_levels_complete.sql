-- Every cube row's rolled-up dimensions hold 'ALL' exactly where grouping_level names them
-- (the rolled-up dimensions, 'none' at the finest level) and exactly where kept_dimensions
-- does not name them (the kept ones, 'ALL' for the grand total), and each cube holds its
-- grand total (or, for cube_customer_base, one total per month) once.
-- Returns one row per inconsistent row.

{%- set cubes = {
    'cube_sales': ['month', 'sales_channel', 'category', 'region', 'pyramid_tier'],
    'cube_contacts': ['month', 'contact_channel', 'reason', 'resolution', 'pyramid_tier'],
    'cube_marketing': ['campaign', 'campaign_channel', 'objective', 'assigned_group', 'month'],
    'cube_financial': ['month', 'pyramid_tier', 'region', 'credit_grade_band'],
    'cube_customer_base': ['month', 'pyramid_tier', 'relationship_stage', 'signup_channel'],
} %}

{%- for cube, dimensions in cubes.items() %}
{%- set total_level = (dimensions | reject('equalto', 'month') | join(',')) if cube == 'cube_customer_base' else (dimensions | join(',')) %}
select
    '{{ cube }}' as cube,
    grouping_level,
    'ALL placement' as check_name,
from {{ ref(cube) }}
where
    {%- for dim in dimensions %}
    ({{ dim }} = 'ALL') <> list_contains(string_split(grouping_level, ','), '{{ dim }}')
    or ({{ dim }} = 'ALL') <> (not list_contains(string_split(kept_dimensions, ','), '{{ dim }}'))
    or {{ dim }} is null
    {%- if not loop.last %} or {% endif %}
    {%- endfor %}
    or (grouping_level = 'none') <> (kept_dimensions = '{{ dimensions | join(",") }}')

union all

select
    '{{ cube }}' as cube,
    '{{ total_level }}' as grouping_level,
    'one total row' as check_name,
from (
    select count(*) as n_rows, count(distinct month) as n_months
    from {{ ref(cube) }}
    where grouping_level = '{{ total_level }}'
)
where {{ "n_rows <> n_months or n_rows = 0" if cube == "cube_customer_base" else "n_rows <> 1" }}
{% if not loop.last %}
union all
{% endif %}
{%- endfor %}
