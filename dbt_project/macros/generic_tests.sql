{#- Fails with every combination of the columns that occurs more than once. -#}
{% test unique_combination(model, columns) %}
select
    {{ columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- Fails with every value of `key` whose rows disagree on any of the columns (NULLs aside).
    min() <> max() says what count(distinct) > 1 says, without a distinct aggregate: at L,
    fct_sales' order_id over three columns took 2.4 s instead of 5.5 s. -#}
{% test same_within(model, key, columns) %}
select {{ key }}
from {{ model }}
group by {{ key }}
having {% for column in columns %}min({{ column }}) <> max({{ column }}){{ ' or ' if not loop.last }}{% endfor %}
{% endtest %}

{#- Fails with every row where the expression is false (NULL counts as false). -#}
{% test expression_true(model, expression) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}

{#- SCD2: per natural key, versions tile time without gap or overlap and exactly one is
    current (valid_to = the end of time). Fails with each offending version. -#}
{% test scd2_contiguous(model, natural_key, valid_from='valid_from', valid_to='valid_to') %}
with versions as (
    select
        {{ natural_key }} as natural_key,
        {{ valid_from }} as valid_from,
        {{ valid_to }} as valid_to,
        lead({{ valid_from }}) over (partition by {{ natural_key }} order by {{ valid_from }}) as next_valid_from
    from {{ model }}
)
select *
from versions
where valid_to <= valid_from
    or (next_valid_from is not null and valid_to <> next_valid_from)
    or (next_valid_from is null and valid_to <> {{ end_of_time() }})
{% endtest %}
