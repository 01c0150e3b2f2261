{#- A stable BIGINT surrogate key from a natural key: the first 60 bits of its MD5.
    Stable across full and incremental builds (unlike row_number), so facts written by an
    earlier incremental run keep pointing at the right dimension row. -#}
{% macro hash_key(expressions) -%}
    {{ return(adapter.dispatch('hash_key', 'crmwh')(expressions)) }}
{%- endmacro %}

{% macro default__hash_key(expressions) -%}
    {%- set parts = [] -%}
    {%- for e in expressions -%}
        {%- do parts.append("coalesce(" ~ dbt.cast(e, api.Column.translate_type("string")) ~ ", '~')") -%}
        {%- if not loop.last %}{% do parts.append("'|'") %}{% endif -%}
    {%- endfor -%}
    cast(('x' || substr({{ dbt.hash(dbt.concat(parts)) }}, 1, 15)) as bigint)
{%- endmacro %}

{% macro duckdb__hash_key(expressions) -%}
    {%- set parts = [] -%}
    {%- for e in expressions -%}
        {%- do parts.append("coalesce(cast(" ~ e ~ " as varchar), '~')") -%}
        {%- if not loop.last %}{% do parts.append("'|'") %}{% endif -%}
    {%- endfor -%}
    cast(('0x' || substr({{ dbt.hash(dbt.concat(parts)) }}, 1, 15)) as bigint)
{%- endmacro %}
