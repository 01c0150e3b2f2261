-- One row per call with the customer it belongs to: its own customer_id, else the customer
-- whose phone matches the caller's: the version valid at the call first (valid_from, not
-- effective_from: a reassigned number belongs to whoever held it then), then the latest.
with

calls as (
    select * from {{ ref('stg_call_center__calls') }}
),

customer_versions as (
    select * from {{ ref('int_customers_versioned') }}
),

phone_candidates as (
    select
        calls.call_id,
        customer_versions.customer_id,
        row_number() over (
            partition by calls.call_id
            order by
                case
                    when calls.started_at >= customer_versions.valid_from
                        and calls.started_at < customer_versions.valid_to then 0
                    else 1
                end,
                customer_versions.valid_from desc
        ) as match_rank
    from calls
    inner join customer_versions
        on customer_versions.phone_hash = calls.caller_phone_hash
    where calls.customer_id is null
),

phone_matches as (
    select call_id, customer_id
    from phone_candidates
    where match_rank = 1
),

final as (
    select
        calls.call_id,
        calls.started_at,
        calls.ended_at,
        coalesce(calls.customer_id, phone_matches.customer_id) as customer_id,
        case
            when calls.customer_id is not null then 'id'
            when phone_matches.customer_id is not null then 'phone'
            else 'anonymous'
        end as identified_by,
        calls.agent_id,
        calls.direction,
        calls.reason,
        calls.resolution,
        calls.csat,
        calls._loaded_at
    from calls
    left join phone_matches
        on phone_matches.call_id = calls.call_id
)

select * from final
