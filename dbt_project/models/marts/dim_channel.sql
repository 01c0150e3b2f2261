-- One row per sales or contact channel, with the group BI tools roll it up to.
with

channels as (
    select 'store' as channel, 'sales' as channel_group, true as is_sales_channel, false as is_contact_channel
    union all select 'web', 'digital', true, true
    union all select 'app', 'digital', true, true
    union all select 'sales_rep', 'sales', false, true
    union all select 'call_center', 'service', false, true
    union all select 'voc', 'service', false, true
    union all select 'survey', 'service', false, true
    union all select 'email', 'marketing', false, true
    union all select 'sms', 'marketing', false, true
    union all select 'kakao', 'marketing', false, true
    union all select 'direct_mail', 'marketing', false, true
    union all select 'telemarketing', 'marketing', false, true
    union all select 'app_push', 'marketing', false, true
    union all select 'unknown', 'unknown', false, false
),

final as (
    select
        channel,
        channel_group,
        is_sales_channel,
        is_contact_channel
    from channels
)

select * from final
