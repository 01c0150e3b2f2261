{#- Age in whole years at a date, banded: birth dates never leave staging. -#}
{% macro age_years(birth_date, at_date) -%}
    (
        extract(year from {{ at_date }}) - extract(year from {{ birth_date }})
        - case
            when extract(month from {{ at_date }}) * 100 + extract(day from {{ at_date }})
                < extract(month from {{ birth_date }}) * 100 + extract(day from {{ birth_date }})
            then 1 else 0
        end
    )
{%- endmacro %}

{% macro age_band(birth_date, at_date) -%}
    case
        when {{ birth_date }} is null then 'unknown'
        when {{ age_years(birth_date, at_date) }} < 20 then 'under_20'
        when {{ age_years(birth_date, at_date) }} < 30 then '20-29'
        when {{ age_years(birth_date, at_date) }} < 40 then '30-39'
        when {{ age_years(birth_date, at_date) }} < 50 then '40-49'
        when {{ age_years(birth_date, at_date) }} < 60 then '50-59'
        else '60_plus'
    end
{%- endmacro %}
