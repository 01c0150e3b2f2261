{#- One row per key of a raw table: the latest version wins, then the latest delivery
    (raw._files.dt), then the later file and line. Exact duplicates delivered twice collapse
    here. Returns every raw column plus _delivered_on (the file's dt). -#}
{% macro raw_latest(source_name, key, version_order=[]) -%}
    {%- set order_by = version_order + ['_f.dt desc', 'r._file_id desc', 'r._line desc'] -%}
    select *
    from (
        select
            r.*,
            _f.dt as _delivered_on,
            row_number() over (
                partition by {% for k in key %}r.{{ k }}{{ ', ' if not loop.last }}{% endfor %}
                order by {{ order_by | join(', ') }}
            ) as _version_rank
        from {{ source('raw', source_name) }} as r
        left join {{ source('raw', '_files') }} as _f
            on _f.file_id = r._file_id
    ) as ranked
    where _version_rank = 1
{%- endmacro %}
