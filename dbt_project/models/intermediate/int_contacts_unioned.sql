-- One row per customer contact in any channel: calls, sales-rep activities, delivered
-- campaign touches (treatment group), web/app sessions, VOC cases and survey responses.
with

calls as (
    select * from {{ ref('int_calls_identified') }}
),

activities as (
    select * from {{ ref('stg_sales_activities__activities') }}
),

touches as (
    select * from {{ ref('stg_campaign_touches__touches') }}
),

campaigns as (
    select * from {{ ref('stg_campaigns__campaigns') }}
),

sessions as (
    select * from {{ ref('int_web_sessions_identified') }}
),

voc_cases as (
    select * from {{ ref('stg_voc__cases') }}
),

responses as (
    select * from {{ ref('stg_surveys__responses') }}
),

call_contacts as (
    select
        {{ dbt.concat(["'call-'", 'call_id']) }} as contact_id,
        started_at as contact_at,
        customer_id,
        'call_center' as contact_channel,
        direction,
        reason,
        resolution,
        cast({{ dbt.datediff('started_at', 'ended_at', 'second') }} as bigint) as duration_s,
        cast(null as bigint) as cost_krw,
        identified_by,
        'call_center' as source,
        agent_id as staff_id,
        cast(null as {{ dbt.type_string() }}) as campaign_id,
        reason = 'complaint' as is_complaint,
        _loaded_at
    from calls
),

activity_contacts as (
    select
        {{ dbt.concat(["'activity-'", 'activity_id']) }} as contact_id,
        activity_at as contact_at,
        customer_id,
        'sales_rep' as contact_channel,
        'outbound' as direction,
        activity_type as reason,
        outcome as resolution,
        cast(duration_min * 60 as bigint) as duration_s,
        cast(null as bigint) as cost_krw,
        case when customer_id is null then 'anonymous' else 'id' end as identified_by,
        'sales_activities' as source,
        rep_id as staff_id,
        cast(null as {{ dbt.type_string() }}) as campaign_id,
        false as is_complaint,
        _loaded_at
    from activities
),

touch_contacts as (
    select
        {{ dbt.concat(["'touch-'", 'touches.touch_id']) }} as contact_id,
        touches.sent_at as contact_at,
        touches.customer_id,
        coalesce(campaigns.campaign_channel, 'unknown') as contact_channel,
        'outbound' as direction,
        coalesce(campaigns.objective, 'unknown') as reason,
        case
            when touches.clicked_at is not null then 'clicked'
            when touches.opened_at is not null then 'opened'
            else 'delivered'
        end as resolution,
        cast(null as bigint) as duration_s,
        touches.cost_krw,
        case when touches.customer_id is null then 'anonymous' else 'id' end as identified_by,
        'campaign_touches' as source,
        cast(null as {{ dbt.type_string() }}) as staff_id,
        touches.campaign_id,
        false as is_complaint,
        touches._loaded_at
    from touches
    left join campaigns
        on campaigns.campaign_id = touches.campaign_id
    where touches.assigned_group = 'treatment'
        and touches.delivered
        and touches.sent_at is not null
),

session_contacts as (
    select
        {{ dbt.concat(["'session-'", 'session_id']) }} as contact_id,
        session_start as contact_at,
        customer_id,
        coalesce(channel, 'web') as contact_channel,
        'inbound' as direction,
        'browse' as reason,
        deepest_step as resolution,
        cast({{ dbt.datediff('session_start', 'session_end', 'second') }} as bigint) as duration_s,
        cast(null as bigint) as cost_krw,
        identified_by,
        'web_events' as source,
        cast(null as {{ dbt.type_string() }}) as staff_id,
        utm_campaign as campaign_id,
        false as is_complaint,
        _loaded_at
    from sessions
),

voc_contacts as (
    select
        {{ dbt.concat(["'voc-'", 'voc_id']) }} as contact_id,
        received_at as contact_at,
        customer_id,
        'voc' as contact_channel,
        'inbound' as direction,
        voc_type as reason,
        status as resolution,
        cast(null as bigint) as duration_s,
        compensation_krw as cost_krw,
        case when customer_id is null then 'anonymous' else 'id' end as identified_by,
        'voc' as source,
        cast(null as {{ dbt.type_string() }}) as staff_id,
        cast(null as {{ dbt.type_string() }}) as campaign_id,
        voc_type = 'complaint' as is_complaint,
        _loaded_at
    from voc_cases
),

survey_contacts as (
    select
        {{ dbt.concat(["'survey-'", 'response_id']) }} as contact_id,
        responded_at as contact_at,
        customer_id,
        'survey' as contact_channel,
        'inbound' as direction,
        survey_type as reason,
        touchpoint as resolution,
        cast(null as bigint) as duration_s,
        cast(null as bigint) as cost_krw,
        case when customer_id is null then 'anonymous' else 'id' end as identified_by,
        'surveys' as source,
        cast(null as {{ dbt.type_string() }}) as staff_id,
        cast(null as {{ dbt.type_string() }}) as campaign_id,
        false as is_complaint,
        _loaded_at
    from responses
),

final as (
    select * from call_contacts
    union all
    select * from activity_contacts
    union all
    select * from touch_contacts
    union all
    select * from session_contacts
    union all
    select * from voc_contacts
    union all
    select * from survey_contacts
)

select * from final
