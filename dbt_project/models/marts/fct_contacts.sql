-- The inputs whose newly loaded rows mark older days to rewrite (macros/incremental_window.sql),
-- each with the source its rows carry: an older day is rewritten for the sources that name
-- it (at L voc cases come again for 40 days, and rewrote every contact of those days).
{{ incremental_fact({
    'stg_call_center__calls': 'started_at',
    'stg_sales_activities__activities': 'activity_at',
    'stg_campaign_touches__touches': 'sent_at',
    'int_web_sessions_identified': 'session_start',
    'stg_voc__cases': 'received_at',
    'stg_surveys__responses': 'responded_at',
}, event_at='contact_at', sources={
    'stg_call_center__calls': 'call_center',
    'stg_sales_activities__activities': 'sales_activities',
    'stg_campaign_touches__touches': 'campaign_touches',
    'int_web_sessions_identified': 'web_events',
    'stg_voc__cases': 'voc',
    'stg_surveys__responses': 'surveys',
}) }}
-- One row per customer contact in any channel (call, sales activity, delivered campaign
-- touch, web/app session, VOC case, survey response).
{%- set bounds = incremental_bounds() %}
with

contacts as (
    select * from {{ ref('int_contacts_unioned') }}
    {{- where_in_incremental_window('contact_at', bounds) }}
),

customer_versions as (
    select * from {{ ref('int_customers_versioned') }}
),

keyed as (
    select
        contacts.*,
        customer_versions.customer_key
    from contacts
    left join customer_versions
        on customer_versions.customer_id = contacts.customer_id
        and contacts.contact_at >= customer_versions.effective_from
        and contacts.contact_at < customer_versions.valid_to
),

final as (
    select
        contact_id,
        contact_at,
        cast(contact_at as date) as date_day,
        {{ month_label('contact_at') }} as month,
        customer_id,
        coalesce(customer_key, -1) as customer_key,
        contact_channel,
        direction,
        reason,
        resolution,
        duration_s,
        cost_krw,
        identified_by,
        source,
        staff_id,
        campaign_id,
        is_complaint,
        _loaded_at
    from keyed
)

{{ select_incremental_window('final', bounds) }}
