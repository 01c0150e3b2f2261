-- One row per customer version (SCD type 2) plus the -1 unknown member.
with

versions as (
    select * from {{ ref('int_customers_versioned') }}
),

scores as (
    {{ customer_scores_select() }}
),

customer_versions as (
    select
        versions.customer_key,
        versions.customer_id,
        versions.valid_from,
        versions.valid_to,
        versions.is_current,
        {{ age_band('versions.birth_date', 'cast(versions.valid_from as date)') }} as age_band,
        versions.gender,
        versions.income_band,
        versions.household_size,
        versions.education,
        versions.occupation,
        versions.region,
        versions.city,
        versions.signup_date,
        versions.signup_channel,
        versions.marketing_opt_in,
        versions.status,
        versions.closed_at,
        coalesce(scores.pyramid_tier, 'unscored') as pyramid_tier,
        coalesce(scores.relationship_stage, 'unscored') as relationship_stage
    from versions
    left join scores
        on scores.customer_id = versions.customer_id
),

unknown_member as (
    select
        cast(-1 as bigint) as customer_key,
        'unknown' as customer_id,
        {{ beginning_of_time() }} as valid_from,
        {{ end_of_time() }} as valid_to,
        true as is_current,
        'unknown' as age_band,
        'U' as gender,
        'unknown' as income_band,
        cast(null as integer) as household_size,
        'unknown' as education,
        'unknown' as occupation,
        'unknown' as region,
        'unknown' as city,
        cast(null as date) as signup_date,
        'unknown' as signup_channel,
        false as marketing_opt_in,
        'unknown' as status,
        cast(null as date) as closed_at,
        'unknown' as pyramid_tier,
        'unknown' as relationship_stage
),

final as (
    select * from customer_versions
    union all
    select * from unknown_member
)

select * from final
