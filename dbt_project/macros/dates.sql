{#- month is VARCHAR 'YYYY-MM' in every mart, so a cube can hold 'ALL' in the same column. -#}
{% macro month_label(expression) -%}
    {{ return(adapter.dispatch('month_label', 'crmwh')(expression)) }}
{%- endmacro %}

{% macro default__month_label(expression) -%}
    to_char({{ expression }}, 'YYYY-MM')
{%- endmacro %}

{% macro duckdb__month_label(expression) -%}
    strftime({{ expression }}, '%Y-%m')
{%- endmacro %}

{#- The end of time for SCD2 validity: valid_to of the current version. -#}
{% macro end_of_time() -%}
    cast('9999-12-31 00:00:00' as timestamp)
{%- endmacro %}

{% macro beginning_of_time() -%}
    cast('1900-01-01 00:00:00' as timestamp)
{%- endmacro %}
