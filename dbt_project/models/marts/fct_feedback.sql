-- The inputs whose newly loaded rows mark older days to rewrite (macros/incremental_window.sql).
{{ incremental_fact({
    'stg_voc__cases': 'received_at',
    'stg_surveys__responses': 'responded_at',
}, event_at='received_at') }}
-- One row per VOC case (its latest version) or survey response.
{%- set bounds = incremental_bounds() %}
with

voc_cases as (
    select * from {{ ref('stg_voc__cases') }}
    {{- where_in_incremental_window('received_at', bounds) }}
),

responses as (
    select * from {{ ref('stg_surveys__responses') }}
    {{- where_in_incremental_window('responded_at', bounds) }}
),

customer_versions as (
    select * from {{ ref('int_customers_versioned') }}
),

feedback as (
    select
        {{ dbt.concat(["'voc-'", 'voc_id']) }} as feedback_id,
        'voc' as feedback_type,
        customer_id,
        received_at,
        channel,
        voc_type,
        category,
        severity,
        cast(null as integer) as score,
        status in ('resolved', 'closed') as resolved,
        case
            when resolved_at is not null
                then {{ dbt.datediff('received_at', 'resolved_at', 'second') }} / 3600.0
        end as hours_to_resolve,
        voc_type = 'complaint' as is_complaint,
        compensation_krw,
        _loaded_at
    from voc_cases
    union all
    select
        {{ dbt.concat(["'survey-'", 'response_id']) }} as feedback_id,
        survey_type as feedback_type,
        customer_id,
        responded_at as received_at,
        touchpoint as channel,
        cast(null as {{ dbt.type_string() }}) as voc_type,
        touchpoint as category,
        cast(null as integer) as severity,
        score,
        cast(null as boolean) as resolved,
        cast(null as double) as hours_to_resolve,
        false as is_complaint,
        cast(0 as bigint) as compensation_krw,
        _loaded_at
    from responses
),

keyed as (
    select
        feedback.*,
        customer_versions.customer_key
    from feedback
    left join customer_versions
        on customer_versions.customer_id = feedback.customer_id
        and feedback.received_at >= customer_versions.effective_from
        and feedback.received_at < customer_versions.valid_to
),

final as (
    select
        feedback_id,
        feedback_type,
        customer_id,
        coalesce(customer_key, -1) as customer_key,
        received_at,
        cast(received_at as date) as date_day,
        {{ month_label('received_at') }} as month,
        channel,
        voc_type,
        category,
        severity,
        score,
        resolved,
        cast(hours_to_resolve as double) as hours_to_resolve,
        is_complaint,
        compensation_krw,
        _loaded_at
    from keyed
)

{{ select_incremental_window('final', bounds) }}
